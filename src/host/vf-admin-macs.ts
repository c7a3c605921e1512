// The administrative MAC the PF holds for each of its VFs (`ip link show dev PF`: vfinfo_list),
// read at prepare so a lease's undo puts back what was there, not zeros: an operator may have
// pinned a VF's MAC, and zeros would make the next user of the VF random.

import { VfwireError } from '../errors.js';
import type { Runner } from '../exec/runner.js';
import { ip } from '../exec/tools.js';
import { parseJsonOutput } from '../json-output.js';
import type { Inventory } from './inventory.js';

/** VF index -> MAC from `ip -j link show dev PF`. */
export function parseVfAdminMacs(stdout: string, pf: string): Map<number, string> {
  const links = parseJsonOutput(stdout, `ip link show dev ${pf}`) as {
    vfinfo_list?: { vf?: number; address?: string }[];
  }[];
  const out = new Map<number, string>();
  if (!Array.isArray(links) || links.length !== 1) throw new VfwireError(`ip link show dev ${pf}: expected one link`);
  for (const vf of links[0]!.vfinfo_list ?? []) {
    if (
      typeof vf.vf === 'number' &&
      typeof vf.address === 'string' &&
      /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(vf.address)
    )
      out.set(vf.vf, vf.address);
  }
  return out;
}

/** Fills each VF's adminMac from its PF (real hosts only: the sim's VFs have no PF behind them). */
export async function readVfAdminMacs(runner: Runner, netns: string | undefined, inv: Inventory): Promise<void> {
  for (const pf of inv.values()) {
    const macs = parseVfAdminMacs(
      (await runner.run({ argv: ip(netns, '-j', 'link', 'show', 'dev', pf.name) })).stdout,
      pf.name,
    );
    for (const vf of pf.vfs) vf.adminMac = macs.get(vf.index);
  }
}
