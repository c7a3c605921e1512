// Which VF a new lease gets: the first free one, PFs in config order (or only the PF the
// metadata names), VFs in index order, so leases are predictable and easy to read in status.

import type { Config } from '../config/config.js';
import { ResourceError, ValidationError } from '../errors.js';
import type { Inventory, PfInfo, VfInfo } from '../host/inventory.js';
import { inPool } from '../host/pool.js';
import type { LedgerData } from '../ledger/types.js';

export interface Choice {
  pf: PfInfo;
  vf: VfInfo;
}

/** `taken` holds `pf/vf` of VFs already chosen earlier in the same plan. */
export function chooseVf(
  vm: string,
  index: number,
  wantPf: string | undefined,
  inv: Inventory,
  ledger: LedgerData,
  cfg: Config,
  taken: Set<string>,
): Choice {
  const pools = wantPf ? cfg.pfs.filter((p) => p.name === wantPf) : cfg.pfs;
  if (wantPf && pools.length === 0) {
    throw new ValidationError(
      `interface ${index}: pf: "${wantPf}" is not a PF in ${cfg.path} (have: ${cfg.pfs.map((p) => p.name).join(', ')})`,
      { vm },
    );
  }
  const used = new Set(Object.values(ledger.leases).map((l) => `${l.pf}/${l.vf}`));
  let usable = 0;
  for (const pool of pools) {
    const pf = inv.get(pool.name);
    if (!pf) continue;
    for (const vf of pf.vfs) {
      if (!inPool(pool, vf)) continue;
      usable++;
      const id = `${pf.name}/${vf.index}`;
      if (!used.has(id) && !taken.has(id)) return { pf, vf };
    }
  }
  const where = pools.map((p) => p.name).join(', ');
  throw new ResourceError(
    `interface ${index}: no free VF on ${where} (${usable} usable, all leased; see vfwire status)`,
    { vm },
  );
}
