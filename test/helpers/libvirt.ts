// Real libvirtd for end-to-end tests: a hook that points at a sim host's config, daemon
// restarts (libvirt discovers hooks only when it starts), tiny diskless QEMU domains.

import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const URI = 'qemu:///system';
const REPO = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const HOOK_DIR = '/etc/libvirt/hooks/qemu.d';

export const virsh = (...args: string[]) => execa('virsh', ['-c', URI, ...args], { reject: false, timeout: 120_000 });

export async function libvirtReachable(): Promise<boolean> {
  return (await virsh('version')).exitCode === 0;
}

/** A qemu.d hook running this checkout's hooks/qemu against the given config. */
export function installTestHook(name: string, configPath: string): string {
  mkdirSync(HOOK_DIR, { recursive: true });
  const path = join(HOOK_DIR, name);
  writeFileSync(path, `#!/bin/sh\n# vfwire test hook, removed by the test that wrote it\nexport VFWIRE_CONFIG='${configPath}'\nexec '${REPO}/hooks/qemu' "$@"\n`, { mode: 0o755 });
  return path;
}

export function removeTestHook(path: string): void {
  rmSync(path, { force: true });
}

export async function restartLibvirtd(): Promise<void> {
  const systemd = existsSync('/run/systemd/system') && (await execa('systemctl', ['is-active', '--quiet', 'libvirtd'], { reject: false })).exitCode === 0;
  if (systemd) {
    await execa('systemctl', ['restart', 'libvirtd']);
  } else {
    await execa('pkill', ['-x', 'libvirtd'], { reject: false });
    for (let i = 0; i < 100 && (await execa('pgrep', ['-x', 'libvirtd'], { reject: false })).exitCode === 0; i++) await sleep(100);
    await execa('libvirtd', ['-d']);
  }
  for (let i = 0; i < 100; i++) {
    if (await libvirtReachable()) return;
    await sleep(200);
  }
  throw new Error('libvirtd did not come back');
}

/** KVM when libvirt can use it here, TCG otherwise. */
export async function virtType(): Promise<'kvm' | 'qemu'> {
  return (await virsh('domcapabilities', '--virttype', 'kvm')).exitCode === 0 ? 'kvm' : 'qemu';
}

export interface TestDomain {
  name: string;
  type: 'kvm' | 'qemu';
  /** Attribute strings of vfwire interfaces; undefined: no vfwire metadata. */
  ifaces?: string[];
  machine?: 'pc' | 'q35';
  /** Default true; without ACPI the pc machine cannot hot-plug PCI devices. */
  acpi?: boolean;
}

/** A diskless VM: firmware finds nothing to boot and idles, which is all a NIC attach needs. */
export function testDomainXml(d: TestDomain): string {
  const meta = d.ifaces
    ? `<metadata><vfwire:net xmlns:vfwire="https://vfwire.dev/xmlns/1.0">${d.ifaces.map((a) => `<vfwire:interface ${a}/>`).join('')}</vfwire:net></metadata>`
    : '';
  return `<domain type="${d.type}">
  <name>${d.name}</name>${meta}
  <memory unit="MiB">64</memory>
  <vcpu>1</vcpu>
  <os><type arch="x86_64" machine="${d.machine ?? 'pc'}">hvm</type></os>
  ${d.acpi === false ? '' : '<features><acpi/></features>'}
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
  </devices>
</domain>
`;
}

export async function defineDomain(dir: string, d: TestDomain): Promise<void> {
  const file = join(dir, `${d.name}.xml`);
  writeFileSync(file, testDomainXml(d));
  const r = await virsh('define', file);
  if (r.exitCode !== 0) throw new Error(`virsh define ${d.name}: ${r.stderr}`);
}

export async function removeDomain(name: string): Promise<void> {
  await virsh('destroy', name);
  await virsh('undefine', name);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns a value (not undefined) or the time is up. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}
