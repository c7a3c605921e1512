// vfwire's log: JSON lines in <log_dir>/vfwire.log and, with a syslog socket (the config's
// `syslog`, /dev/log by default), the same lines to syslog/journald as vfwire (log-syslog.ts).
// Hooks write nothing else but their one error line on stderr (libvirt shows it). Never pass
// key material to the logger.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import winston from 'winston';
import { SyslogTransport } from './log-syslog.js';

export type Logger = winston.Logger;

// A logger's syslog transport, for closeLogger (winston unpipes its transports as it ends).
const SYSLOG = new WeakMap<Logger, SyslogTransport>();

export interface LogOptions {
  /** The syslog socket to send to as well; none: the file only. */
  syslog?: string | false;
}

export function createLogger(logDir: string, component: string, opts: LogOptions = {}): Logger {
  const transports: winston.transport[] = [];
  const syslog = opts.syslog ? new SyslogTransport(opts.syslog) : undefined;
  if (syslog) transports.push(syslog);
  try {
    mkdirSync(logDir, { recursive: true, mode: 0o750 });
    transports.push(
      new winston.transports.File({
        filename: join(logDir, 'vfwire.log'),
        maxsize: 10 * 1024 * 1024,
        maxFiles: 3,
        tailable: true,
      }),
    );
  } catch {
    // No writable log dir (e.g. `vfwire plan` as a normal user): keep going without a file log.
    transports.push(new winston.transports.Console({ level: 'warn', stderrLevels: ['error', 'warn'], silent: true }));
  }
  const logger = winston.createLogger({
    level: process.env.VFWIRE_LOG_LEVEL ?? 'info',
    defaultMeta: { component, pid: process.pid },
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports,
  });
  // A failing transport must not crash the process: the log is a record, not the outcome.
  logger.on('error', () => undefined);
  if (syslog) SYSLOG.set(logger, syslog);
  return logger;
}

/**
 * Flush file transports before the process exits (winston writes asynchronously). Bounded: a
 * log that cannot be written (full disk, a directory in the file's place) must not hold up or
 * change the hook's answer.
 */
export async function closeLogger(log: Logger): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 500);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    log.on('error', done);
    log.on('finish', done);
    log.end();
  });
  const syslog = SYSLOG.get(log);
  if (syslog) await Promise.race([syslog.flush(), new Promise((r) => setTimeout(r, 500).unref())]);
}
