// A hook call: what hooks/qemu runs (through hook-main.ts) for domains that carry vfwire metadata.

import { oneLine, ValidationError } from '../errors.js';
import type { HookContext } from '../hook/context.js';
import { dispatch } from '../hook/dispatch.js';
import type { Logger } from '../log.js';

// A domain XML is kilobytes; refuse to buffer an unbounded stdin.
const MAX_STDIN = 1024 * 1024;

export async function hookCommand(vm: string, op: string, subOp: string, configFlag?: string): Promise<number> {
  let log: Logger | undefined;
  let ctx: HookContext | undefined;
  const makeContext = async (): Promise<HookContext> => {
    if (ctx) return ctx;
    // Loaded only by operations that act: config (yaml, zod), the log (winston), the runner (execa).
    const [{ configPath, loadConfig }, { createLogger }, { ExecRunner }] = await Promise.all([import('../config/config.js'), import('../log.js'), import('../exec/runner.js')]);
    const cfg = await loadConfig(configPath(configFlag));
    log = createLogger(cfg.logDir, 'hook');
    // Fault injection exists for the sim's tests only; a stray variable must not break real hosts.
    const injected = (name: string) => (cfg.backend === 'sim' && process.env[name] !== undefined ? Number(process.env[name]) : undefined);
    ctx = { cfg, runner: new ExecRunner(cfg.commandTimeoutMs), log, failAt: injected('VFWIRE_TEST_FAIL_STEP'), hangAt: injected('VFWIRE_TEST_HANG_STEP') };
    return ctx;
  };
  try {
    const xml = await readStdin(MAX_STDIN);
    await dispatch({ vm, op, subOp, xml }, makeContext);
    return 0;
  } catch (err) {
    const line = oneLine(err);
    log?.error('hook refused', { vm, op, subOp, error: line });
    // libvirt kills a running QEMU whose reconnect hook fails: whatever went wrong, not that.
    if (op === 'reconnect') return 0;
    // libvirt puts the hook's stderr into the error `virsh start` prints: one clear line.
    process.stderr.write(`vfwire: ${line}\n`);
    // Set now, not after the log is flushed: the answer must not depend on the log.
    process.exitCode = 1;
    return 1;
  } finally {
    if (log) await (await import('../log.js')).closeLogger(log);
  }
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
