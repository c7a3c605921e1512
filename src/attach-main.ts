// The attach worker's entry point: `attach-main.js CONFIG UUID VM STARTED_AT_MS`, as the
// `started` hook spawns it (hooks/qemu, or attach/spawn.ts from Node); an empty CONFIG is
// $VFWIRE_CONFIG's or the default. Separate from cli.ts, like hook-main.ts, so the
// time from start to attached carries no command-line parser and none of the other commands.

import { configPath as defaultConfigPath, loadConfig } from './config/config.js';
import { isRetryableAttachError, openLiveDomain } from './attach/libvirt-domain.js';
import { runAttachWorker } from './attach/worker.js';
import { oneLine } from './errors.js';
import { ExecRunner } from './exec/runner.js';
import { closeLogger, createLogger } from './log.js';

const [configPath, uuid, vm, startedAtText] = process.argv.slice(2);
if (configPath === undefined || !uuid || !vm) {
  process.stderr.write('usage: attach-main.js CONFIG UUID VM [STARTED_AT_MS]\n');
  process.exitCode = 2;
} else {
  // No top-level await: the worker's bundle is CommonJS (scripts/bundle.mjs, src/code-cache.ts).
  void attachWorker(configPath || defaultConfigPath(), uuid, vm, Number(startedAtText) || Date.now()).then((code) => {
    process.exitCode = code;
  });
}

async function attachWorker(path: string, uuid: string, vm: string, startedAt: number): Promise<number> {
  // Without a config there is no log to write to: one line on stderr (a terminal's, when run by
  // hand; the shim sends it nowhere), never a stack of the bundle's minified source.
  const cfg = await loadConfig(path).catch((err: unknown) => {
    process.stderr.write(`vfwire attach worker: ${oneLine(err)}\n`);
  });
  if (!cfg) return 1;
  const log = createLogger(cfg.logDir, 'attach', { syslog: cfg.syslog });
  // A daemon that stops answering would leave a libvirt call blocked in a worker thread, and
  // Node waits for those at exit: past the deadline, leave the hard way.
  const killer = setTimeout(() => {
    log.error('attach worker overran its deadline; exiting', { vm, uuid });
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), 500);
  }, cfg.attachTimeoutMs + 15_000);
  killer.unref();
  try {
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
