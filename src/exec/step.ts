// A step is data: the exact command that does it and the one that undoes it. The planner
// makes them, the executor runs them, and the ledger keeps the undo commands of applied steps
// so teardown replays what was really done, not what today's config would do.

export interface Command {
  /** argv[0] is the program; never a shell. */
  argv: string[];
  /** Fed on stdin, e.g. `ip -batch -` input that must not appear in argv. */
  stdin?: string;
  /** The stdin holds no secret (an nft script): plans and error messages show it. */
  inputShown?: boolean;
}

/**
 * Who a step's undo belongs to: one VM interface, a VNI shared by several, a peer's SAs, or the
 * host, whose undo only rolls back the plan that made it and is never recorded in the ledger.
 */
export type StepOwner =
  { kind: 'lease'; key: string } | { kind: 'vni'; vni: number } | { kind: 'peer'; name: string } | { kind: 'host' };

export interface Step {
  /** Short kind, stable for tests and fault injection: `vxlan-create`, `rep-master`, ... */
  kind: string;
  /** The device or object the step acts on, for error messages. */
  device: string;
  owner: StepOwner;
  do: Command;
  undo?: Command;
}

// As a POSIX shell would read it back: plain words bare, anything else single-quoted.
const shellWord = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

/** A command as a shell user would type it; stdin, where secrets travel, shows as `(stdin)` unless marked shown. */
export function formatCommand(cmd: Command): string {
  if (cmd.inputShown) return formatCommandWithInput(cmd);
  return cmd.argv.map(shellWord).join(' ') + (cmd.stdin === undefined ? '' : ' <<< (stdin)');
}

/** The same with its stdin written out, for dry runs (callers redact what must not show). */
export function formatCommandWithInput(cmd: Command): string {
  return cmd.stdin === undefined
    ? formatCommand(cmd)
    : `${cmd.argv.map(shellWord).join(' ')} <<< ${shellWord(cmd.stdin.trim())}`;
}
