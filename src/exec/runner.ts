// How vfwire runs host commands (ip, bridge, virsh): argv arrays through execa, never a shell,
// each with a bounded timeout (libvirt waits for a hook forever, and a hung hook blocks the
// domain). The sim's own helpers that drive libvirtd and the hook script use execa the same way.

import { NotFoundError, VfwireError } from '../errors.js';
import { formatCommand, type Command } from './step.js';

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface Runner {
  run(cmd: Command): Promise<RunResult>;
}

// What iproute2 says when the object of a command is already gone: `ip link` and `bridge` name the
// missing device, `bridge fdb del` of a missing entry gets ENOENT from the kernel, and `-n NS`
// of a deleted netns (everything in it went with it) cannot open it; `ip xfrm state delete` of a
// missing SA gets ESRCH.
// tc says so in its own words when a rule or qdisc is gone; `ip ... show dev X` of a missing X
// says `Device "X" does not exist.`; nft prints the kernel's ENOENT for a missing table, chain or
// set as `Error: No such file or directory`, with a `; did you mean ...` hint when one is close.
const ABSENT =
  /^(Error: No such file or directory(; did you mean .*)?|Cannot find device "[^"]*"|Device "[^"]*" does not exist\.|RTNETLINK answers: No such file or directory|RTNETLINK answers: No such process|Cannot open network namespace "[^"]*": No such file or directory|Error: (Filter with specified priority\/protocol not found|Cannot find specified filter chain|Specified filter handle not found|Parent Qdisc doesn't exists|Invalid handle)\.)$/m;

export class CommandError extends VfwireError {
  override name = 'CommandError';
}

// What a failed command wrote to stderr, whole (its error's message keeps the first lines).
const STDERR = new WeakMap<Error, string>();

export function stderrOf(err: unknown): string | undefined {
  return err instanceof Error ? STDERR.get(err) : undefined;
}

// A long shown input (a VNI's OpenFlow rules: kilobytes) would bury the tool's own words, which
// name the failing line (`-:3: ...`), past what a log line keeps: it is summed up, and `vfwire
// plan` shows it whole.
const LONG_INPUT = 400;
function commandInError(cmd: Command): string {
  if (!cmd.inputShown || (cmd.stdin ?? '').length <= LONG_INPUT) return formatCommand(cmd);
  const lines = cmd.stdin!.trimEnd().split('\n').length;
  return `${formatCommand({ argv: cmd.argv })} <<< (${lines} lines of input, as vfwire plan shows them)`;
}

// execa takes ~90 ms to load, and most hook calls run no command: it loads at the first one.
let execaModule: Promise<typeof import('execa')> | undefined;

export class ExecRunner implements Runner {
  constructor(private readonly timeoutMs = 10_000) {}

  async run(cmd: Command): Promise<RunResult> {
    const [file, ...args] = cmd.argv;
    const { execa } = await (execaModule ??= import('execa'));
    const res = await execa(file!, args, {
      input: cmd.stdin ?? '',
      timeout: this.timeoutMs,
      forceKillAfterDelay: 1000,
      reject: false,
      stripFinalNewline: true,
      env: { LC_ALL: 'C' },
    });
    if (res.exitCode === 0 && !res.failed) return { stdout: res.stdout, stderr: res.stderr };
    const what = res.timedOut
      ? `timed out after ${this.timeoutMs} ms`
      : res.exitCode !== undefined
        ? `exit code ${res.exitCode}`
        : `failed (${res.signal ?? res.code ?? 'spawn error'})`;
    const detail = (res.stderr || res.stdout || res.message || '').trim().split('\n').slice(0, 3).join('; ');
    const message = `${commandInError(cmd)}: ${what}${detail ? `: ${detail}` : ''}`;
    const err = !res.timedOut && ABSENT.test(res.stderr) ? new NotFoundError(message) : new CommandError(message);
    STDERR.set(err, res.stderr);
    throw err;
  }
}
