// The log to syslog/journald as well, under the identifier vfwire, through util-linux's logger
// (Debian's bsdutils, an essential package): one logger per process reads `<PRI>line`s on its
// stdin (--prio-prefix) and sends each as a datagram to the socket, /dev/log by default
// (journald's or rsyslog's). Node has no Unix datagram sockets, and a spawn per line would cost
// a process each. With nobody on the socket logger drops each line (--socket-errors=off) until
// its input ends; the file log goes on regardless. Lines are capped at 8 KiB: logger splits a
// longer one into several messages (util-linux logger.c logger_stdin, --size).

import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import Transport from 'winston-transport';

/** RFC 5424 severities of winston's npm levels; facility daemon (3). */
const SEVERITY: Record<string, number> = { error: 3, warn: 4, info: 6, http: 6, verbose: 7, debug: 7, silly: 7 };
const DAEMON = 3;
/** What logger takes as one message (--size below). */
const MAX_LINE = 8192;

// What the file log has that syslog adds itself (time, pid) or the line starts with.
const OMIT = new Set(['level', 'message', 'timestamp', 'component', 'pid']);

/** `component: message {"meta":...}`, one line. */
export function syslogLine(info: Record<string, unknown>): string {
  const meta = Object.fromEntries(Object.entries(info).filter(([k]) => !OMIT.has(k)));
  const rest = Object.keys(meta).length ? ` ${JSON.stringify(meta)}` : '';
  const text = `${String(info.component ?? 'vfwire')}: ${String(info.message)}${rest}`;
  const line = text.replace(/[\r\n]+/g, ' ');
  return line.length > MAX_LINE ? `${line.slice(0, MAX_LINE - 15)} ...(clipped)` : line;
}

export class SyslogTransport extends Transport {
  #child: ChildProcess | undefined;
  #dead = false;

  constructor(private readonly socket: string) {
    super();
  }

  override log(info: Record<string, unknown>, next: () => void): void {
    // No syslog on this host (a container, CI): no logger process for each hook call either.
    if (!this.#child && !this.#dead && !isSocket(this.socket)) this.#dead = true;
    const child = this.#dead ? undefined : (this.#child ??= this.#spawn());
    const pri = DAEMON * 8 + (SEVERITY[String(info.level)] ?? 6);
    // A reader that stalls costs lines, not memory: nothing is queued behind a full pipe.
    if (child?.stdin?.writable && child.stdin.writableLength < 64 * 1024)
      child.stdin.write(`<${pri}>${syslogLine(info)}\n`);
    next();
  }

  override close(): void {
    void this.flush();
  }

  /** Ends logger's input; resolves once what was written reached it. */
  async flush(): Promise<void> {
    const stdin = this.#child?.stdin;
    if (!stdin || this.#dead || stdin.writableFinished) return;
    await new Promise<void>((resolve) => {
      stdin.once('finish', resolve);
      stdin.once('error', resolve);
      stdin.end();
    });
  }

  #spawn(): ChildProcess {
    const child = spawn(
      'logger',
      [
        '--prio-prefix',
        '--tag',
        'vfwire',
        `--id=${process.pid}`,
        '--size',
        String(MAX_LINE + 64),
        '--socket',
        this.socket,
        '--socket-errors=off',
      ],
      { stdio: ['pipe', 'ignore', 'ignore'] },
    );
    const die = () => {
      this.#dead = true;
    };
    child.on('error', die);
    child.on('exit', die);
    child.stdin?.on('error', die);
    // Never what keeps a process alive: closeLogger flushes it (flush()).
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    return child;
  }
}

function isSocket(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isSocket() ?? false;
}
