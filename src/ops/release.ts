// stopped/end and release/end: give back everything a VM's leases hold. Idempotent: libvirt
// calls both for one stop, and objects that are already gone count as released.

import { undoAll } from '../exec/apply.js';
import type { UndoCommand } from '../exec/nft-batch.js';
import { readBootId } from '../host/boot-id.js';
import { dropLeases, forgetEarlierBoot } from '../ledger/record.js';
import { withLedger, type LedgerTxn } from '../ledger/store.js';
import { planRelease, planReleaseKeys } from '../plan/release.js';
import { lockOptions, type Config } from '../config/config.js';
import type { Runner } from '../exec/runner.js';
import type { Logger } from '../log.js';

/** What a release needs: the hook, the attach worker and a failed prepare each pass their own. */
export interface ReleaseDeps {
  runner: Runner;
  log: Logger;
}

/** What a release, gc and the sim's teardown run: consecutive `ip` commands of one netns as one batch. */
export function undoRelease(commands: UndoCommand[], runner: Runner): Promise<Error[]> {
  return undoAll(commands, runner, { batch: true });
}

/** Called once a lock-free read found leases of the VM (hook/dispatch.ts). */
export async function release(
  cfg: Pick<Config, 'stateDir' | 'lockTimeoutMs' | 'lockStaleMs'>,
  uuid: string,
  vm: string,
  deps: ReleaseDeps,
): Promise<void> {
  await withLedger(cfg.stateDir, (txn) => releaseLocked(txn, uuid, vm, deps), lockOptions(cfg));
}

/** Release with the ledger lock already held. Returns how many leases were released. */
export async function releaseLocked(txn: LedgerTxn, uuid: string, vm: string, deps: ReleaseDeps): Promise<number> {
  if (forgetEarlierBoot(txn.data, await readBootId())) {
    await txn.save();
    deps.log.warn('dropped leases of an earlier boot', { vm, uuid });
  }
  return releaseKeysLocked(txn, planRelease(txn.data, uuid).keys, vm, deps, uuid);
}

/** The named leases given back, the lock held: their recorded undo, then their VNIs' if last. */
export async function releaseKeysLocked(
  txn: LedgerTxn,
  keys: string[],
  vm: string,
  deps: ReleaseDeps,
  uuid?: string,
): Promise<number> {
  const plan = planReleaseKeys(txn.data, keys);
  if (plan.keys.length === 0) return 0;
  const errors = await undoRelease(plan.commands, deps.runner);
  // The VF is free once the VM is gone, whatever a stuck kernel object says; leftovers are
  // logged here and found again by `vfwire gc`.
  for (const err of errors) deps.log.warn('release step failed', { vm, uuid, error: err.message });
  dropLeases(txn.data, plan.keys);
  await txn.save();
  deps.log.info('released', { vm, uuid, leases: plan.keys.length, failedSteps: errors.length });
  return plan.keys.length;
}
