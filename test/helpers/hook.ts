// Runs hooks/qemu the way libvirt does: argv, domain XML on stdin, exit code and stderr back.

import { callHook, hookDomainXml, type HookResult } from '../../src/sim/hook-call.js';

export type HookRun = HookResult;

export function runHook(configPath: string, vm: string, op: string, sub: string, xml: string, env: Record<string, string> = {}): Promise<HookRun> {
  return callHook(configPath, vm, op, sub, xml, env, 60_000);
}

/** A minimal domain XML; `ifaces` are the attribute strings of each vfwire interface. */
export const domainXml = hookDomainXml;
