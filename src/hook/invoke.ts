// One hook call as hooks/qemu makes it (through hook-main.ts): read the domain XML, dispatch,
// and turn the outcome into the exit code and the one stderr line libvirt shows.

import type { Config } from '../config/config.js';
import { oneLine, ValidationError } from '../errors.js';
import type { Runner } from '../exec/runner.js';
import type { Logger } from '../log.js';
import type { HookContext, HookEnv } from './context.js';
import { dispatch, type HookCall } from './dispatch.js';
import { DOMAIN_XML_MAX_BYTES } from '../domain/limits.js';

export async function invokeHook(vm: string, op: string, subOp: string): Promise<number> {
  let xml: string;
  try {
    xml = await readStdin(DOMAIN_XML_MAX_BYTES);
  } catch (err) {
    return refuse(op, oneLine(err));
  }
  const out = await runHookCall({ vm, op, subOp, xml });
  return out.line === undefined ? out.code : refuse(op, out.line);
}

// libvirt puts the hook's stderr into the error `virsh start` prints: one clear line. Set now,
// not after the log is flushed: the answer must not depend on the log.
function refuse(op: string, line: string): number {
  if (op === 'reconnect') return 0;
  process.stderr.write(`vfwire: ${line}\n`);
  process.exitCode = 1;
  return 1;
}

/**
 * One hook call given its domain XML: the exit code and, for a refusal, its one line. The
 * config is `configFile`, else $VFWIRE_CONFIG or the default. The kernel lab's sim guests call
 * this in-process (a Node start costs seconds under TCG); everything else goes through the shim.
 */
export async function runHookCall(call: HookCall, configFile?: string): Promise<{ code: number; line?: string }> {
  const { vm, op, subOp } = call;
  let log: Logger | undefined;
  let cfg: Promise<Config> | undefined;
  let ctx: Promise<HookContext> | undefined;
  // Each loaded only when an operation needs it: the config (yaml, zod), then the log (winston).
  const config = () =>
    (cfg ??= import('../config/config.js').then(({ configPath, loadConfig }) =>
      loadConfig(configFile ?? configPath()),
    ));
  const context = () =>
    (ctx ??= Promise.all([config(), import('../log.js'), import('../exec/runner.js')]).then(
      async ([c, { createLogger }, { ExecRunner }]) => {
        log = createLogger(c.logDir, 'hook', { syslog: c.syslog });
        const runner = new ExecRunner(c.commandTimeoutMs);
        return { cfg: c, runner, log, stepRunner: await injectedFaults(c, runner) };
      },
    ));
  const pinned = process.env.VFWIRE_STATE_DIR;
  const env: HookEnv = { config, context, ...(pinned ? { pinnedStateDir: pinned } : {}) };
  try {
    await dispatch(call, env);
    return { code: 0 };
  } catch (err) {
    const line = oneLine(err);
    log?.error('hook refused', { vm, op, subOp, error: line });
    // libvirt kills a running QEMU whose reconnect hook fails: whatever went wrong, not that.
    return op === 'reconnect' ? { code: 0 } : { code: 1, line };
  } finally {
    if (log) await (await import('../log.js')).closeLogger(log);
  }
}

// Fault injection exists for the sim's tests only; a stray variable must not break real hosts.
async function injectedFaults(cfg: Config, runner: Runner): Promise<Runner | undefined> {
  const injected = (name: string) =>
    cfg.backend === 'sim' && process.env[name] !== undefined ? Number(process.env[name]) : undefined;
  const faults = {
    failAt: injected('VFWIRE_TEST_FAIL_STEP'),
    hangAt: injected('VFWIRE_TEST_HANG_STEP'),
    onHang: (i: number) => process.stderr.write(`vfwire: injected hang before command ${i}\n`),
  };
  if (faults.failAt === undefined && faults.hangAt === undefined) return undefined;
  const { FaultRunner } = await import('../exec/fault-runner.js');
  return new FaultRunner(runner, faults);
}

async function readStdin(limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new ValidationError(`domain XML on stdin is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
