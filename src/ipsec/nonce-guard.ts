// AES-GCM must never see a (key, nonce) twice, and an outbound SA installed again restarts its
// sequence numbers, which are the nonces. So every outbound SA is remembered in the ledger before
// it exists, and refused forever after; it is forgotten again only when its `state add` failed,
// which installs nothing. Every path that installs an outbound SA goes through here.

import { ValidationError } from '../errors.js';
import { applySteps, undoAll } from '../exec/apply.js';
import type { Runner } from '../exec/runner.js';
import type { LedgerTxn } from '../ledger/store.js';
import type { Step, Command } from '../plan/step.js';

export interface GuardedPlan {
  steps: Step[];
  cleanup: Command[];
  guard: { id: string; step: Step };
}

/** Applies the adds under the guard, then the cleanup; returns the cleanup's failures. */
export async function applyGuarded(txn: LedgerTxn, plan: GuardedPlan, runner: Runner, refusal: string): Promise<Error[]> {
  const state = (txn.data.ipsec ??= { peers: {}, used: [] });
  if (state.used.includes(plan.guard.id)) throw new ValidationError(refusal);
  state.used.push(plan.guard.id);
  await txn.save();
  let installed = false;
  try {
    await applySteps(plan.steps, runner, { onApplied: (s) => (installed ||= s === plan.guard.step) });
  } catch (err) {
    if (!installed) {
      state.used = state.used.filter((id) => id !== plan.guard.id);
      await txn.save();
    }
    throw err;
  }
  return undoAll(plan.cleanup, runner);
}
