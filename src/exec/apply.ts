// Runs steps in order; on a failure undoes the completed ones in reverse (best effort, going on
// past undo errors) and throws one error carrying the failure and every undo failure.

import { NotFoundError, VfwireError } from '../errors.js';
import { failedLine, ipBatch, ipRuns, type IpRun } from './ip-batch.js';
import type { UndoCommand } from './nft-batch.js';
import { groupSteps, type StepGroup } from './step-groups.js';
import { CommandError, stderrOf, type Runner } from './runner.js';
import { formatCommand, type Command, type Step } from './step.js';

export interface ApplyOptions {
  vm?: string;
  /** Told of each step that ran, before the next one starts. */
  onApplied?: (step: Step) => void;
  /**
   * Consecutive `ip` steps of one netns go to one `ip -batch`, `nft -f -` ones to one script
   * (exec/step-groups.ts). Off where a command must be a step (fault injection counts commands).
   */
  batch?: boolean;
}

export async function applySteps(steps: Step[], runner: Runner, opts: ApplyOptions = {}): Promise<void> {
  const done: Step[] = [];
  const groups: StepGroup[] = opts.batch ? groupSteps(steps) : steps.map((s) => ({ steps: [s] }));
  for (const group of groups) {
    const failure = await runGroup(group, runner, (step) => {
      done.push(step);
      opts.onApplied?.(step);
    });
    if (!failure) continue;
    const undoErrors = await undoAll(
      done.reverse().flatMap((s) => (s.undo ? [s.undo] : [])),
      runner,
    );
    const also = undoErrors.length
      ? ` (and ${undoErrors.length} undo step(s) failed: ${undoErrors.map((e) => e.message).join('; ')})`
      : '';
    const { step, cause } = failure;
    throw new VfwireError(`failed to ${step.kind} ${step.device}${also}`, { vm: opts.vm, cause });
  }
}

/** Runs one group; each step that ran is told to `ran`. Returns the step that failed, if one did. */
async function runGroup(
  group: StepGroup,
  runner: Runner,
  ran: (step: Step) => void,
): Promise<{ step: Step; cause: unknown } | undefined> {
  if (!group.batch) {
    const step = group.steps[0]!;
    try {
      await runner.run(step.do);
    } catch (cause) {
      return { step, cause };
    }
    ran(step);
    return undefined;
  }
  try {
    await runner.run(group.batch.cmd);
  } catch (cause) {
    // One nft transaction: nothing of it ran, so its steps one by one name the one that fails.
    // (After a timeout it may have committed: vfwire's scripts are idempotent, `add` of what
    // exists changes nothing, so running them again is safe.)
    if (group.batch.tool === 'nft') {
      for (const step of group.steps) {
        const failure = await runGroup({ steps: [step] }, runner, ran);
        if (failure) return failure;
      }
      return undefined;
    }
    const at = stoppedAt(cause, group.steps.length);
    // Where ip did not say (a timeout, a signal), any of them may have run: all count as done,
    // so their undo runs (an object that was never made counts as undone).
    group.steps.slice(0, at ?? group.steps.length).forEach(ran);
    const step = group.steps[at ?? group.steps.length - 1]!;
    return { step, cause: failedInBatch(step.do, cause) };
  }
  group.steps.forEach(ran);
  return undefined;
}

const causeText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Which of its `count` commands a failed `ip -batch` stopped at, when ip said (exec/ip-batch.ts). */
function stoppedAt(err: unknown, count: number): number | undefined {
  const stderr = stderrOf(err);
  const at = stderr === undefined ? undefined : failedLine(stderr);
  return at !== undefined && at < count ? at : undefined;
}

/** The failure of one command of a batch, named by its own command line. */
const failedInBatch = (cmd: Command, err: unknown) => new CommandError(`${formatCommand(cmd)}, in ${causeText(err)}`);

export interface UndoOptions {
  /** Consecutive `ip` commands of one netns as one `ip -batch` (exec/ip-batch.ts), as a release runs them. */
  batch?: boolean;
}

/**
 * Runs undo commands in the order given. Already-gone objects count as undone; other failures
 * are collected and returned, never thrown, so one stuck object does not strand the rest. A
 * merged command that fails (one nft transaction: nothing of it ran) runs its parts singly.
 */
export async function undoAll(commands: UndoCommand[], runner: Runner, opts: UndoOptions = {}): Promise<Error[]> {
  const errors: Error[] = [];
  const runs: IpRun<UndoCommand>[] = opts.batch ? ipRuns(commands) : commands.map((c) => ({ commands: [c] }));
  for (const run of runs) {
    if (run.batch && run.commands.length > 1) {
      errors.push(...(await undoBatch(run.commands, ipBatch(run.batch.netns, run.batch.lines), runner)));
      continue;
    }
    const cmd = run.commands[0]!;
    try {
      await runner.run(cmd);
    } catch (err) {
      if (cmd.parts) errors.push(...(await undoAll(cmd.parts, runner)));
      else if (!(err instanceof NotFoundError)) errors.push(err as Error);
    }
  }
  return errors;
}

// Without -force ip stops at the first command that fails and names it: those before it ran,
// that one is judged as it would be alone (already gone: undone), and the rest go on.
async function undoBatch(commands: Command[], batch: Command, runner: Runner): Promise<Error[]> {
  try {
    await runner.run(batch);
    return [];
  } catch (err) {
    const at = stoppedAt(err, commands.length);
    // Where ip did not say (a timeout, a netns that cannot be opened), each again on its own:
    // one that did run finds its object gone.
    if (at === undefined) return undoAll(commands, runner);
    const failed = err instanceof NotFoundError ? [] : [failedInBatch(commands[at]!, err)];
    return [...failed, ...(await undoAll(commands.slice(at + 1), runner, { batch: true }))];
  }
}
