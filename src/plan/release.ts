// The release plan: per VNI the overlay's leave (tc-flower rewrites its replication lists
// without the leaving members), then the recorded undo commands of a VM's leases in reverse, then
// those of each VNI whose last member goes; their nft scripts last, one transaction per netns
// (exec/nft-batch.ts nftLast). Pure, like the prepare plan.

import type { LedgerData } from '../ledger/types.js';
import { leasesOf } from '../ledger/record.js';
import { nftLast, type UndoCommand } from '../exec/nft-batch.js';
import type { Command } from '../exec/step.js';
import { recordedLeave } from '../overlay/overlay.js';

export interface ReleasePlan {
  keys: string[];
  commands: UndoCommand[];
}

export function planRelease(data: LedgerData, uuid: string): ReleasePlan {
  return planReleaseKeys(
    data,
    leasesOf(data, uuid).map((l) => l.key),
  );
}

export function planReleaseKeys(data: LedgerData, keys: string[]): ReleasePlan {
  const commands: Command[] = [];
  const going = new Set(keys);
  const vnis = [...new Set(keys.map((k) => data.leases[k]?.vni).filter((v): v is number => v !== undefined))];
  for (const vni of vnis) {
    const state = data.vnis[String(vni)];
    if (!state) continue;
    const leaving = keys.filter((k) => data.leases[k]?.vni === vni);
    commands.push(...recordedLeave(state)(data, vni, leaving).map((s) => s.do));
  }
  for (const key of [...keys].reverse()) commands.push(...[...(data.leases[key]?.undo ?? [])].reverse());
  for (const vni of vnis) {
    const state = data.vnis[String(vni)];
    if (state && state.members.every((m) => going.has(m))) commands.push(...[...state.undo].reverse());
  }
  return { keys, commands: nftLast(commands) };
}
