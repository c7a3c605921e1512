// Runs hooks/qemu the way libvirt does: argv, domain XML on stdin, exit code and stderr back.

import { callHook, hookDomainXml } from '../../src/sim/hook-call.js';

/** What libvirt acts on: the exit code, and the stderr line it shows. */
export interface HookRun {
  code: number;
  stderr: string;
}

export async function runHook(
  configPath: string,
  vm: string,
  op: string,
  sub: string,
  xml: string,
  env: Record<string, string> = {},
): Promise<HookRun> {
  const { code, stderr } = await callHook(configPath, vm, op, sub, xml, env, 60_000);
  return { code, stderr };
}

/** A minimal domain XML; `ifaces` are the attribute strings of each vfwire interface. */
export const domainXml = hookDomainXml;
