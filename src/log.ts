// vfwire's log: JSON lines in <log_dir>/vfwire.log. Hooks write nothing else but their one
// error line on stderr (libvirt shows it). Never pass key material to the logger.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import winston from 'winston';

export type Logger = winston.Logger;

export function createLogger(logDir: string, component: string): Logger {
  const transports: winston.transport[] = [];
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
}
