// AES-GCM must never see a (key, nonce) twice, and an outbound SA installed again restarts its
// sequence numbers, which are the nonces. So the key of every outbound SA is remembered in the
// ledger before the SA exists, and never sent with again, whatever the SPI. It is forgotten only
// when its `state add` failed and the kernel confirms it has no such SA (a timed-out `ip` may
// have added it all the same). Every path that installs an outbound SA goes through here.

import { ValidationError } from '../errors.js';
import { applySteps, undoAll } from '../exec/apply.js';
import type { Runner } from '../exec/runner.js';
import type { LedgerTxn } from '../ledger/store.js';
import type { Step, Command } from '../exec/step.js';

export interface GuardedPlan {
  steps: Step[];
  cleanup: Command[];
  /** `<key fingerprint>:<spi>` of the outbound SA, the step that adds it, and its `state get`. */
  guard: { id: string; step: Step; probe: Command };
}

/** Whether a key (the fingerprint part of an id) was ever used to send. */
export function keyUsed(used: readonly string[], id: string): boolean {
  const key = id.split(':')[0];
  return used.some((u) => u.split(':')[0] === key);
}

/** Applies the adds under the guard, then the cleanup; returns the cleanup's failures. */
export async function applyGuarded(
  txn: LedgerTxn,
  plan: GuardedPlan,
  runner: Runner,
  refusal: string,
): Promise<Error[]> {
  const state = (txn.data.ipsec ??= { peers: {}, used: [] });
  if (keyUsed(state.used, plan.guard.id)) throw new ValidationError(refusal);
  state.used.push(plan.guard.id);
  await txn.save();
  let added = false;
  try {
    await applySteps(plan.steps, runner, { onApplied: (s) => (added ||= s === plan.guard.step) });
  } catch (err) {
    const absent =
      !added &&
      (await runner.run(plan.guard.probe).then(
        () => false,
        () => true,
      ));
    if (absent) {
      state.used = state.used.filter((id) => id !== plan.guard.id);
      await txn.save();
    } else if (!added) {
      // Added after all (a timeout): the rollback did not know, so remove it here.
      await undoAll(plan.guard.step.undo ? [plan.guard.step.undo] : [], runner);
    }
    throw err;
  }
  return undoAll(plan.cleanup, runner);
}
