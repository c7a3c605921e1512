// The machine's libvirt daemon as the sim's libvirt host uses it: a qemu.d hook that runs this
// checkout's hook against a sim host's config, daemon restarts (libvirt discovers hooks only
// when it starts), and tiny diskless QEMU domains.

import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { waitFor } from '../wait.js';
import { HOOK_SCRIPT, pinnedHookEnv, vfwireNetXml } from './hook-call.js';

export const LIBVIRT_URI = 'qemu:///system';
const HOOK_DIR = '/etc/libvirt/hooks/qemu.d';

export const virsh = (...args: string[]) =>
  execa('virsh', ['-c', LIBVIRT_URI, ...args], { reject: false, timeout: 120_000 });

export async function libvirtReachable(): Promise<boolean> {
  return (await virsh('version').catch(() => ({ exitCode: 1 }))).exitCode === 0;
}

/**
 * A qemu.d hook (name must be unique to the sim) running this checkout's hook with `configPath`.
 * libvirtd finds hooks only when it starts, so installing and removing one restart it.
 */
export async function installSimHook(name: string, configPath: string): Promise<string> {
  if (!/^[a-z0-9-]{1,40}$/.test(name)) throw new Error(`hook name "${name}"`);
  mkdirSync(HOOK_DIR, { recursive: true });
  const path = join(HOOK_DIR, name);
  const pins = Object.entries(await pinnedHookEnv(configPath)).map(([k, v]) => `export ${k}='${v}'\n`);
  writeFileSync(
    path,
    `#!/bin/sh\n# vfwire sim hook, removed with the sim that wrote it\n${pins.join('')}exec '${HOOK_SCRIPT}' "$@"\n`,
    {
      mode: 0o755,
    },
  );
  try {
    await restartLibvirtd();
  } catch (err) {
    rmSync(path, { force: true });
    throw err;
  }
  return path;
}

export async function removeSimHook(path: string): Promise<void> {
  rmSync(path, { force: true });
  await restartLibvirtd();
}

export async function restartLibvirtd(): Promise<void> {
  const systemd =
    existsSync('/run/systemd/system') &&
    (await execa('systemctl', ['is-active', '--quiet', 'libvirtd'], { reject: false })).exitCode === 0;
  if (systemd) {
    await execa('systemctl', ['restart', 'libvirtd']);
  } else {
    await execa('pkill', ['-x', 'libvirtd'], { reject: false });
    // A daemon slow to exit gets 10 s; a second one then fails to start and says so.
    await waitFor(
      'libvirtd to exit',
      async () => ((await execa('pgrep', ['-x', 'libvirtd'], { reject: false })).exitCode === 0 ? undefined : true),
      10_000,
      100,
    ).catch(() => undefined);
    await execa('libvirtd', ['-d']);
  }
  await waitFor(
    'libvirtd to come back after a restart',
    async () => ((await libvirtReachable()) ? true : undefined),
    20_000,
  );
}

/** KVM when libvirt can use it here, TCG otherwise. */
export async function virtType(): Promise<'kvm' | 'qemu'> {
  return (await virsh('domcapabilities', '--virttype', 'kvm')).exitCode === 0 ? 'kvm' : 'qemu';
}

export interface DisklessDomain {
  name: string;
  type: 'kvm' | 'qemu';
  /** Attribute strings of vfwire interfaces; undefined: no vfwire metadata. */
  ifaces?: string[];
  machine?: 'pc' | 'q35';
  /** Default true; without ACPI the pc machine cannot hot-plug PCI devices. */
  acpi?: boolean;
  /** q35: this many pcie-root-ports (libvirt puts its USB controller and balloon on two). */
  rootPorts?: number;
}

/** A VM without disks: its firmware finds nothing to boot and idles, all a NIC attach needs. */
function disklessDomainXml(d: DisklessDomain): string {
  const meta = d.ifaces ? `\n  <metadata>${vfwireNetXml(d.ifaces)}</metadata>` : '';
  const ports =
    d.rootPorts === undefined
      ? ''
      : "<controller type='pci' index='0' model='pcie-root'/>" +
        "<controller type='pci' model='pcie-root-port'/>".repeat(d.rootPorts);
  return `<domain type="${d.type}">
  <name>${d.name}</name>${meta}
  <memory unit="MiB">64</memory>
  <vcpu>1</vcpu>
  <os><type arch="x86_64" machine="${d.machine ?? 'pc'}">hvm</type></os>
  ${d.acpi === false ? '' : '<features><acpi/></features>'}
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>${ports}</devices>
</domain>
`;
}

export async function defineDiskless(dir: string, d: DisklessDomain): Promise<void> {
  await defineDomain(dir, d.name, disklessDomainXml(d));
}

/** Writes the XML to `dir/<name>.xml` and defines it in libvirt. */
export async function defineDomain(dir: string, name: string, xml: string): Promise<void> {
  const file = join(dir, `${name}.xml`);
  writeFileSync(file, xml);
  const r = await virsh('define', file);
  if (r.exitCode !== 0) throw new Error(`virsh define ${name}: ${r.stderr.trim()}`);
}

export async function removeDomain(name: string): Promise<void> {
  await virsh('destroy', name);
  await virsh('undefine', name);
}
