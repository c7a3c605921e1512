// The sim calls vfwire's real hook script the way libvirt does (argv, the domain XML on stdin)
// and as install.sh installs it: the config and its state directory pinned ($VFWIRE_CONFIG,
// $VFWIRE_STATE_DIR). Also the smallest domain XML that carries vfwire metadata.

import { join } from 'node:path';
import { execa } from 'execa';
import { loadConfig } from '../config/config.js';
import { VFWIRE_NS } from '../domain/interface-spec.js';
import { PROGRAM_ROOT } from '../program-files.js';

export const HOOK_SCRIPT = join(PROGRAM_ROOT, 'hooks/qemu');

/** The five hook calls libvirt makes for one start and stop of a VM, in order. */
export const HOOK_LIFECYCLE = [
  ['prepare', 'begin'],
  ['start', 'begin'],
  ['started', 'begin'],
  ['stopped', 'end'],
  ['release', 'end'],
] as const;

export interface HookResult {
  code: number;
  stdout: string;
  stderr: string;
}

const pins = new Map<string, Promise<Record<string, string>>>();

/**
 * What install.sh pins in the hook for this config: the config path, and its state_dir when the
 * config is valid (without it the shim hands release and reconnect to Node, as installed).
 */
export function pinnedHookEnv(configPath: string): Promise<Record<string, string>> {
  let pin = pins.get(configPath);
  if (!pin) {
    pin = loadConfig(configPath).then(
      (cfg) => ({ VFWIRE_CONFIG: configPath, VFWIRE_STATE_DIR: cfg.stateDir }),
      () => ({ VFWIRE_CONFIG: configPath }),
    );
    pins.set(configPath, pin);
  }
  return pin;
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
    env: { ...(await pinnedHookEnv(configPath)), ...env },
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
