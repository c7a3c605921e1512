// The release plan: the recorded undo commands of a VM's leases in reverse, then those of each
// VNI whose last member goes. A tc-flower VNI first has its replication lists rewritten without
// the leaving members (recomputed from the ledger, never replayed). Pure, like the prepare plan.

import type { LedgerData } from '../ledger/types.js';
import { leasesOf } from '../ledger/record.js';
import { planTcLeave } from '../overlay/tc-flower/membership.js';
import type { Command } from '../exec/step.js';
import { tcVniStateOf } from '../overlay/tc-flower/members.js';

export interface ReleasePlan {
  keys: string[];
  commands: Command[];
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
    // Rules taken down for IPsec stay down: a rewrite would put encap rules back without SAs.
    if (!state?.tc || data.ipsec?.tcRulesDown) continue;
    commands.push(
      ...planTcLeave(
        state.tc,
        tcVniStateOf(data, vni),
        keys.filter((k) => data.leases[k]?.vni === vni),
      ).map((s) => s.do),
    );
  }
  for (const key of [...keys].reverse()) commands.push(...[...(data.leases[key]?.undo ?? [])].reverse());
  for (const vni of vnis) {
    const state = data.vnis[String(vni)];
    if (state && state.members.every((m) => going.has(m))) commands.push(...[...state.undo].reverse());
  }
  return { keys, commands };
}
