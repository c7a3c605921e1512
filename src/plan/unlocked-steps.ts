// Which of a start's steps may run after the ledger lock is let go: the plan's trailing run of
// lease-owned steps, when the overlay allows it (Overlay.ownStepsUnlocked). Everything up to the
// last VNI- or host-owned step runs under the lock and in plan order, so no other start or
// release sees a VNI half made; what trails acts on the lease's VF and representor alone, which
// the recorded lease reserves, and on a VNI its recorded membership keeps alive. Their undo is
// recorded with the lease before either part runs, so a crash in either leaves gc everything.

import type { Step } from '../exec/step.js';

export interface LockSplit {
  locked: Step[];
  unlocked: Step[];
}

export function splitUnlocked(steps: Step[], ownStepsUnlocked: boolean): LockSplit {
  let from = steps.length;
  while (ownStepsUnlocked && from > 0 && steps[from - 1]!.owner.kind === 'lease') from--;
  return { locked: steps.slice(0, from), unlocked: steps.slice(from) };
}

/** The undo of a lease's steps in `steps`: what the ledger keeps of it once only those ran. */
export function leaseUndoIn(steps: Step[], key: string): Step['do'][] {
  return steps.filter((s) => s.owner.kind === 'lease' && s.owner.key === key && s.undo).map((s) => s.undo!);
}
