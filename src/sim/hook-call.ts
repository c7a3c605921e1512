// The sim calls vfwire's real hook script the way libvirt does: argv, the domain XML on stdin,
// the config named by $VFWIRE_CONFIG. Also the smallest domain XML that carries vfwire metadata.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { VFWIRE_NS } from '../domain/interface-spec.js';

export const HOOK_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '../../../hooks/qemu');

export interface HookResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function callHook(
  configPath: string,
  vm: string,
  op: string,
  sub: string,
  xml: string,
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<HookResult> {
  const res = await execa(HOOK_SCRIPT, [vm, op, sub, '-'], {
    input: xml,
    reject: false,
    timeout: timeoutMs,
    env: { VFWIRE_CONFIG: configPath, ...env },
  });
  return { code: res.exitCode ?? -1, stdout: res.stdout, stderr: res.stderr };
}

/** vfwire's metadata element; `ifaces` are the attribute strings of each interface. */
export function vfwireNetXml(ifaces: string[]): string {
  return `<vfwire:net xmlns:vfwire="${VFWIRE_NS}">${ifaces.map((a) => `<vfwire:interface ${a}/>`).join('')}</vfwire:net>`;
}

/** A minimal domain XML as the hook sees it; without `ifaces`, no vfwire metadata. */
export function hookDomainXml(name: string, uuid: string, ifaces?: string[]): string {
  const meta = ifaces ? `<metadata>${vfwireNetXml(ifaces)}</metadata>` : '';
  return `<domain type="qemu"><name>${name}</name><uuid>${uuid}</uuid>${meta}<memory unit="KiB">65536</memory></domain>\n`;
}
