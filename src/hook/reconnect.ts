// reconnect/begin: libvirtd restarted and found this VM running. Its leases stay as they are;
// a lease still 'preparing' means the daemon died mid-start, and the VM runs, so it is kept too.

import { lockOptions } from '../config/config.js';
import { leasesOf, markActive } from '../ledger/record.js';
import { withLedger } from '../ledger/store.js';
import type { HookContext } from './context.js';

export async function readopt(uuid: string, vm: string, ctx: HookContext): Promise<void> {
  await withLedger(
    ctx.cfg.stateDir,
    async (txn) => {
      // Only a lease still 'preparing' changes; a daemon restart with all leases active writes nothing.
      const preparing = leasesOf(txn.data, uuid).filter((l) => l.state === 'preparing');
      if (preparing.length === 0) return;
      markActive(
        txn.data,
        preparing.map((l) => l.key),
      );
      await txn.save();
      ctx.log.info('re-adopted leases', { vm, uuid, leases: preparing.map((l) => l.key) });
    },
    lockOptions(ctx.cfg),
  );
}
