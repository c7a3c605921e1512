// The VFs vfwire may lease: the config's PFs, each limited to its `vfs` list when it has one,
// and only VFs with a representor (switchdev). prepare chooses among them (plan/choose-vf.ts);
// gc looks at their representors for what a lost lease left (overlay leftovers).

import type { Config } from '../config/config.js';
import type { Inventory, VfInfo } from './inventory.js';

export function inPool(pool: Config['pfs'][number], vf: VfInfo): boolean {
  return !!vf.rep && (!pool.vfs || pool.vfs.has(vf.index));
}

/** The representors of every pool VF, PFs in config order. */
export function poolRepresentors(inv: Inventory, pools: Config['pfs']): string[] {
  return pools.flatMap((pool) => (inv.get(pool.name)?.vfs ?? []).filter((vf) => inPool(pool, vf)).map((vf) => vf.rep!));
}
