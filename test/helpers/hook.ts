// Runs hooks/qemu the way libvirt does: argv, domain XML on stdin, exit code and stderr back.

import { execa } from 'execa';
import { HOOK_SCRIPT } from '../../src/sim/guest.js';

export interface HookRun {
  code: number;
  stderr: string;
}

export async function runHook(configPath: string, vm: string, op: string, sub: string, xml: string, env: Record<string, string> = {}): Promise<HookRun> {
  const res = await execa(HOOK_SCRIPT, [vm, op, sub, '-'], { input: xml, reject: false, timeout: 60_000, env: { VFWIRE_CONFIG: configPath, ...env } });
  return { code: res.exitCode ?? -1, stderr: res.stderr };
}

export const NS = 'https://vfwire.dev/xmlns/1.0';

/** A minimal domain XML; `ifaces` are the attribute strings of each vfwire interface. */
export function domainXml(name: string, uuid: string, ifaces?: string[]): string {
  const meta = ifaces ? `<metadata><vfwire:net xmlns:vfwire="${NS}">${ifaces.map((a) => `<vfwire:interface ${a}/>`).join('')}</vfwire:net></metadata>` : '';
  return `<domain type="qemu"><name>${name}</name><uuid>${uuid}</uuid>${meta}<memory unit="KiB">65536</memory></domain>\n`;
}
