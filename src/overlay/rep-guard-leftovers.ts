// What `vfwire gc` finds in the bridge overlay's anti-spoofing guard (rep-guard.ts) that no lease
// accounts for: a guarded representor no lease holds, or a (representor, MAC) pair no lease holds
// (a ledger lost, a lease dropped by hand). Left in place, the pair would let the VF's next
// tenant send with the old tenant's MAC. Leases still recorded, stale or not, are their
// release's to undo (prepare records them before their guard is set, ledger/record.ts).

import type { Runner } from '../exec/runner.js';
import { ifPresent } from '../exec/if-present.js';
import { nft } from '../exec/tools.js';
import { normalizeMac } from '../domain/mac.js';
import { IFNAME_RE } from '../identifiers.js';
import type { LedgerData } from '../ledger/types.js';
import type { Leftover } from './overlay.js';

export interface GuardElements {
  reps: string[];
  allowed: { rep: string; mac: string }[];
}

/**
 * The guard's elements from `nft -j list table bridge vfwire` (libnftables JSON, nft(8)). Only
 * names and MACs as the kernel and vfwire write them: anything else is not vfwire's, and stays.
 */
export function parseGuardElements(json: string): GuardElements {
  const items = (JSON.parse(json) as { nftables?: { set?: { name?: string; elem?: unknown[] } }[] }).nftables ?? [];
  const elems = (name: string) => items.find((i) => i.set?.name === name)?.set?.elem ?? [];
  return {
    reps: elems('reps').filter((e): e is string => typeof e === 'string' && IFNAME_RE.test(e)),
    allowed: elems('allowed').flatMap((e) => {
      const [rep, mac] = (e as { concat?: unknown[] }).concat ?? [];
      const normal = typeof mac === 'string' ? normalizeMac(mac) : undefined;
      return typeof rep === 'string' && IFNAME_RE.test(rep) && normal ? [{ rep, mac: normal }] : [];
    }),
  };
}

/** undefined: no guard table in that netns (no lease ever ran there). */
export async function readGuardElements(runner: Runner, netns: string | undefined): Promise<GuardElements | undefined> {
  const shown = await ifPresent(runner.run({ argv: nft(netns, '-j', 'list', 'table', 'bridge', 'vfwire') }));
  return shown && parseGuardElements(shown.stdout);
}

export function planGuardLeftovers(netns: string | undefined, found: GuardElements, ledger: LedgerData): Leftover[] {
  const leases = Object.values(ledger.leases);
  const held = new Set(leases.map((l) => l.rep));
  const heldPairs = new Set(leases.map((l) => `${l.rep} ${l.mac.toLowerCase()}`));
  const drop = (what: string, line: string): Leftover => ({
    line,
    command: { argv: nft(netns, '-f', '-'), stdin: `delete element bridge vfwire ${what}\n`, inputShown: true },
  });
  return [
    ...found.allowed
      .filter((p) => !heldPairs.has(`${p.rep} ${p.mac}`))
      .map((p) =>
        drop(`allowed { "${p.rep}" . ${p.mac} }`, `guard: ${p.rep} may send as ${p.mac}, which no lease holds`),
      ),
    ...found.reps
      .filter((r) => !held.has(r))
      .map((r) => drop(`reps { "${r}" }`, `guard: representor ${r} guarded, but no lease holds it`)),
  ];
}
