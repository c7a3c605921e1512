// Consecutive `ip` link/addr/route/neigh steps in one netns run as one `ip [-n NS] -batch -`
// process instead of one process each. The undo bookkeeping stays per step: without -force, ip
// stops at the first command that fails and says which (iproute2 ip/ip.c batch(): "Command
// failed -:N", N counted from 1), so every command before it ran and none after it did.

import type { Command, Step } from './step.js';

// Words ip's batch reader (lib/utils.c makeargs) splits back exactly as argv: no whitespace,
// quotes, backslashes or '#' (a comment there).
const PLAIN = /^[\w@%+=:,./-]+$/;
const OBJECTS = new Set(['link', 'addr', 'address', 'route', 'neigh']);

/** The `-n NS` prefix and the command line of an `ip` command that may join a batch. */
function batchLine(cmd: Command): { netns: string | undefined; line: string } | undefined {
  const [tool, ...args] = cmd.argv;
  if (tool !== 'ip' || cmd.stdin !== undefined) return undefined;
  const netns = args[0] === '-n' ? args[1] : undefined;
  const rest = netns === undefined ? args : args.slice(2);
  if (!OBJECTS.has(rest[0] ?? '') || !rest.every((a) => PLAIN.test(a))) return undefined;
  if (netns !== undefined && !PLAIN.test(netns)) return undefined;
  return { netns, line: rest.join(' ') };
}

export interface StepGroup {
  steps: Step[];
  /** Set when the group is two or more steps run as one batch. */
  batch?: Command;
}

/** Steps in order, consecutive batchable ones of one netns grouped into a batch. */
export function groupSteps(steps: Step[]): StepGroup[] {
  const groups: StepGroup[] = [];
  let run: { netns: string | undefined; steps: Step[]; lines: string[] } | undefined;
  const close = () => {
    if (!run) return;
    groups.push(
      run.steps.length === 1
        ? { steps: run.steps }
        : {
            steps: run.steps,
            batch: {
              argv: run.netns === undefined ? ['ip', '-batch', '-'] : ['ip', '-n', run.netns, '-batch', '-'],
              stdin: run.lines.join('\n') + '\n',
            },
          },
    );
    run = undefined;
  };
  for (const step of steps) {
    const b = batchLine(step.do);
    if (b && run && run.netns === b.netns) {
      run.steps.push(step);
      run.lines.push(b.line);
      continue;
    }
    close();
    if (b) run = { netns: b.netns, steps: [step], lines: [b.line] };
    else groups.push({ steps: [step] });
  }
  close();
  return groups;
}

/** The 0-based index of the command a failed batch stopped at, from ip's stderr; undefined if it did not say. */
export function failedLine(stderr: string): number | undefined {
  const m = /^Command failed -:(\d+)$/m.exec(stderr);
  return m ? Number(m[1]) - 1 : undefined;
}
