// stopped/end and release/end: give back everything a VM's leases hold. Idempotent: libvirt
// calls both for one stop, and objects that are already gone count as released.

import { undoAll } from '../exec/apply.js';
import { readBootId } from '../host/boot-id.js';
import { dropLeases, forgetEarlierBoot } from '../ledger/record.js';
import { withLedger, type LedgerTxn } from '../ledger/store.js';
import { planRelease } from '../plan/release.js';
import type { HookContext } from './context.js';

/** Called once a lock-free read found leases of the VM (hook/dispatch.ts). */
export async function release(uuid: string, vm: string, ctx: HookContext): Promise<void> {
  await withLedger(ctx.cfg.stateDir, (txn) => releaseLocked(txn, uuid, vm, ctx), { timeoutMs: ctx.cfg.lockTimeoutMs });
}

/** Release with the ledger lock already held. Returns how many leases were released. */
export async function releaseLocked(txn: LedgerTxn, uuid: string, vm: string, ctx: HookContext): Promise<number> {
  if (forgetEarlierBoot(txn.data, await readBootId())) {
    await txn.save();
    ctx.log.warn('dropped leases of an earlier boot', { vm, uuid });
  }
  const plan = planRelease(txn.data, uuid);
  if (plan.keys.length === 0) return 0;
  const errors = await undoAll(plan.commands, ctx.runner);
  // The VF is free once the VM is gone, whatever a stuck kernel object says; leftovers are
  // logged here and found again by `vfwire gc`.
  for (const err of errors) ctx.log.warn('release step failed', { vm, uuid, error: err.message });
  dropLeases(txn.data, plan.keys);
  await txn.save();
  ctx.log.info('released', { vm, uuid, leases: plan.keys.length, failedSteps: errors.length });
  return plan.keys.length;
}
