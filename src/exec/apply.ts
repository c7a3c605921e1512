// Runs steps in order; on a failure undoes the completed ones in reverse (best effort, going on
// past undo errors) and throws one error carrying the failure and every undo failure.

import { NotFoundError, VfwireError } from '../errors.js';
import type { Command, Step } from './step.js';
import type { Runner } from './runner.js';

export interface ApplyOptions {
  vm?: string;
  /** Told of each step that ran, before the next one starts. */
  onApplied?: (step: Step) => void;
}

export async function applySteps(steps: Step[], runner: Runner, opts: ApplyOptions = {}): Promise<void> {
  const done: Step[] = [];
  for (const step of steps) {
    try {
      await runner.run(step.do);
      done.push(step);
      opts.onApplied?.(step);
    } catch (cause) {
      const undoErrors = await undoAll(
        done.reverse().flatMap((s) => (s.undo ? [s.undo] : [])),
        runner,
      );
      const also = undoErrors.length
        ? ` (and ${undoErrors.length} undo step(s) failed: ${undoErrors.map((e) => e.message).join('; ')})`
        : '';
      throw new VfwireError(`failed to ${step.kind} ${step.device}${also}`, { vm: opts.vm, cause });
    }
  }
}

/**
 * Runs undo commands in the order given. Already-gone objects count as undone; other failures
 * are collected and returned, never thrown, so one stuck object does not strand the rest.
 */
export async function undoAll(commands: Command[], runner: Runner): Promise<Error[]> {
  const errors: Error[] = [];
  for (const cmd of commands) {
    try {
      await runner.run(cmd);
    } catch (err) {
      if (!(err instanceof NotFoundError)) errors.push(err as Error);
    }
  }
  return errors;
}
