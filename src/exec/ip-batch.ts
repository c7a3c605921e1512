// Consecutive `ip` link/addr/route/neigh steps in one netns run as one `ip [-n NS] -batch -`
// process instead of one process each. The undo bookkeeping stays per step: without -force, ip
// stops at the first command that fails and says which (iproute2 ip/ip.c batch(): "Command
// failed -:N", N counted from 1), so every command before it ran and none after it did.

import type { Command } from './step.js';

// Words ip's batch reader (lib/utils.c makeargs) splits back exactly as argv: no whitespace,
// quotes, backslashes or '#' (a comment there).
const PLAIN = /^[\w@%+=:,./-]+$/;
const OBJECTS = new Set(['link', 'addr', 'address', 'route', 'neigh']);

/** The `-n NS` prefix and the command line of an `ip` command that may join a batch. */
export function ipBatchLine(cmd: Command): { netns: string | undefined; line: string } | undefined {
  const [tool, ...args] = cmd.argv;
  if (tool !== 'ip' || cmd.stdin !== undefined) return undefined;
  const netns = args[0] === '-n' ? args[1] : undefined;
  const rest = netns === undefined ? args : args.slice(2);
  if (!OBJECTS.has(rest[0] ?? '') || !rest.every((a) => PLAIN.test(a))) return undefined;
  if (netns !== undefined && !PLAIN.test(netns)) return undefined;
  return { netns, line: rest.join(' ') };
}

/** One `ip -batch -` running the lines in order. */
export function ipBatch(netns: string | undefined, lines: string[]): Command {
  return {
    argv: netns === undefined ? ['ip', '-batch', '-'] : ['ip', '-n', netns, '-batch', '-'],
    stdin: lines.join('\n') + '\n',
  };
}

/** The 0-based index of the command a failed batch stopped at, from ip's stderr; undefined if it did not say. */
export function failedLine(stderr: string): number | undefined {
  const m = /^Command failed -:(\d+)$/m.exec(stderr);
  return m ? Number(m[1]) - 1 : undefined;
}

/** Consecutive commands; `batch` when they are `ip` ones of one netns, with the lines that run them. */
export interface IpRun<C extends Command = Command> {
  commands: C[];
  batch?: { netns: string | undefined; lines: string[] };
}

/** Commands in order, consecutive `ip` ones of one netns in one run. */
export function ipRuns<C extends Command>(commands: C[]): IpRun<C>[] {
  const runs: IpRun<C>[] = [];
  for (const cmd of commands) {
    const b = ipBatchLine(cmd);
    const last = runs.at(-1);
    if (b && last?.batch && last.batch.netns === b.netns) {
      last.commands.push(cmd);
      last.batch.lines.push(b.line);
    } else runs.push(b ? { commands: [cmd], batch: { netns: b.netns, lines: [b.line] } } : { commands: [cmd] });
  }
  return runs;
}
