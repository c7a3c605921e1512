// `vfwire attach-worker UUID VM --started-at MS`: what the `started` hook spawns (internal).

import { configPath, loadConfig } from '../config/config.js';
import { isRetryableAttachError, openLiveDomain } from '../attach/libvirt-domain.js';
import { runAttachWorker } from '../attach/worker.js';
import { oneLine } from '../errors.js';
import { ExecRunner } from '../exec/runner.js';
import { closeLogger, createLogger } from '../log.js';

export async function attachWorkerCommand(uuid: string, vm: string, opts: { startedAt: string; config?: string }): Promise<number> {
  const cfg = await loadConfig(configPath(opts.config));
  const log = createLogger(cfg.logDir, 'attach');
  // A daemon that stops answering would leave a libvirt call blocked in a worker thread, and
  // Node waits for those at exit: past the deadline, leave the hard way.
  const killer = setTimeout(() => {
    log.error('attach worker overran its deadline; exiting', { vm, uuid });
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), 500);
  }, cfg.attachTimeoutMs + 15_000);
  killer.unref();
  try {
    const startedAt = Number(opts.startedAt) || Date.now();
    const ok = await runAttachWorker(vm, uuid, startedAt, {
      cfg,
      log,
      runner: new ExecRunner(cfg.commandTimeoutMs),
      openDomain: openLiveDomain,
      isRetryable: isRetryableAttachError,
    });
    return ok ? 0 : 1;
  } catch (err) {
    log.error('attach worker failed', { vm, uuid, error: oneLine(err) });
    return 1;
  } finally {
    await closeLogger(log);
  }
}
