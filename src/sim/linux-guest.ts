// Real Linux guests for the demo and the e2e tests: Debian's kernel and a busybox initramfs
// built by guest/build-guest.sh, booted directly by libvirt (<kernel>/<initrd>/<cmdline>), reporting on a serial
// console that libvirt writes to a file. init.sh documents the guest's side: the vfw.* kernel
// parameters it reads and the "VFW-..." lines it prints.

import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { vfwireNetXml } from './hook-call.js';
import { waitFor } from '../wait.js';
import { PROGRAM_ROOT } from '../program-files.js';
import { defineDomain, virtType } from './libvirtd.js';

// dist/src/sim/ -> guest/ in the checkout.
const GUEST_SRC = join(PROGRAM_ROOT, 'guest');
const BUILD_SCRIPT = join(GUEST_SRC, 'build-guest.sh');

export interface GuestImage {
  dir: string;
  kernel: string;
  initrd: string;
}

/** Builds (or finds cached) the guest kernel + initramfs. The first build may apt-get install. */
export async function buildGuestImage(): Promise<GuestImage> {
  const res = await execa(BUILD_SCRIPT, [], { timeout: 600_000, reject: false });
  if (res.exitCode !== 0) throw new Error(`${BUILD_SCRIPT} failed: ${(res.stderr || res.stdout).trim()}`);
  const dir = res.stdout.trim().split('\n').pop()!;
  return { dir, kernel: join(dir, 'kernel'), initrd: join(dir, 'initrd.gz') };
}

/**
 * KVM when libvirt offers it *and* a Linux kernel actually boots under it, TCG otherwise.
 * The second condition is not a formality: in some nested setups (e.g. this project's CI VMs,
 * KVM inside Firecracker on AMD) /dev/kvm works and SeaBIOS runs, but the kernel hangs right after
 * the decompressor. The answer is cached beside the image, per host kernel and QEMU binary.
 * VFWIRE_GUEST_VIRT=kvm|qemu overrides.
 */
export async function guestVirtType(img: GuestImage): Promise<'kvm' | 'qemu'> {
  const forced = process.env.VFWIRE_GUEST_VIRT;
  if (forced === 'kvm' || forced === 'qemu') return forced;
  if ((await virtType()) !== 'kvm') return 'qemu';
  const hostKernel = (await execa('uname', ['-r'])).stdout.trim();
  const qemu = (await execa('qemu-system-x86_64', ['--version'])).stdout.split('\n')[0]!.replace(/[^\w.-]+/g, '_');
  // Beside the images, not in one: the answer depends on the kernel, not on init.sh.
  const cached = join(dirname(img.dir), `kvm-boots.${hostKernel}.${qemu}.${statSync(img.kernel).size}`);
  if (existsSync(cached)) return readFileSync(cached, 'utf8').trim() === 'yes' ? 'kvm' : 'qemu';
  const boots = await kvmBootsLinux(img);
  writeFileSync(cached, boots ? 'yes\n' : 'no\n');
  return boots ? 'kvm' : 'qemu';
}

/** Boots the guest under KVM with no NIC (QEMU directly, no libvirt): does init say hello? */
async function kvmBootsLinux(img: GuestImage): Promise<boolean> {
  const res = await execa(
    'qemu-system-x86_64',
    [
      '-machine',
      'pc,accel=kvm',
      '-m',
      '128',
      '-nodefaults',
      '-display',
      'none',
      '-no-reboot',
      '-serial',
      'stdio',
      '-kernel',
      img.kernel,
      '-initrd',
      img.initrd,
      '-append',
      'console=ttyS0 quiet loglevel=3 vfw.nicwait=0 vfw.poweroff=1',
    ],
    { reject: false, timeout: 20_000, stdin: 'ignore' },
  );
  return res.stdout.includes('VFW-BOOT');
}

export interface GuestVm {
  name: string;
  type: 'kvm' | 'qemu';
  image: GuestImage;
  /** Where libvirt writes the guest's serial console (its directory must be readable by QEMU). */
  consoleLog: string;
  /** Attribute strings of the vfwire interfaces (metadata). */
  ifaces: string[];
  /** vfw.* parameters for init.sh, without the prefix: { ip: '198.19.100.1/24', peers: '...' }. */
  params: Record<string, string | number>;
  memoryMiB?: number;
}

/**
 * The guest's domain: direct kernel boot, console on ttyS0 into a file, machine `pc` with ACPI
 * (the pc machine hot-plugs PCI devices only through ACPI, and `virsh shutdown` presses the ACPI
 * power button), no disks and no NIC of its own: the only NIC is the one vfwire attaches live.
 */
function guestDomainXml(g: GuestVm): string {
  // loglevel=1: kernel messages would interleave with init's lines on the one console.
  const cmdline = [
    'console=ttyS0',
    'quiet',
    'loglevel=1',
    ...Object.entries(g.params).map(([k, v]) => `vfw.${k}=${v}`),
  ].join(' ');
  if (/[<>&'"]/.test(cmdline))
    throw new Error(`guest ${g.name}: kernel command line must not need XML escaping: ${cmdline}`);
  return `<domain type="${g.type}">
  <name>${g.name}</name>
  <metadata>${vfwireNetXml(g.ifaces)}</metadata>
  <memory unit="MiB">${g.memoryMiB ?? 192}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch="x86_64" machine="pc">hvm</type>
    <kernel>${g.image.kernel}</kernel>
    <initrd>${g.image.initrd}</initrd>
    <cmdline>${cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type="file"><source path="${g.consoleLog}"/><target port="0"/></serial>
    <memballoon model="none"/>
  </devices>
</domain>
`;
}

export async function defineGuest(dir: string, g: GuestVm): Promise<void> {
  await defineDomain(dir, g.name, guestDomainXml(g));
}

/** One "VFW-<KIND> k=v ..." line of the guest's console. */
export interface VfwLine {
  kind: string;
  fields: Record<string, string>;
}

/**
 * The VFW lines of a console. QEMU writes the serial port byte by byte as the guest sends it,
 * so the text after the last newline may be half a line: it is left for the next read.
 */
function parseConsole(text: string): VfwLine[] {
  const lines: VfwLine[] = [];
  for (const raw of text.split('\n').slice(0, -1)) {
    const m = /VFW-([A-Z-]+)((?: [\w.]+=\S*)*)/.exec(raw);
    if (!m) continue;
    const fields: Record<string, string> = {};
    for (const kv of m[2]!.trim().split(' ').filter(Boolean)) {
      const i = kv.indexOf('=');
      fields[kv.slice(0, i)] = kv.slice(i + 1);
    }
    lines.push({ kind: m[1]!, fields });
  }
  return lines;
}

/** The last `n` lines of a console, for a failure report. */
export function consoleTail(path: string, n = 25): string {
  return existsSync(path)
    ? readFileSync(path, 'utf8').replace(/\r/g, '').split('\n').slice(-n).join('\n')
    : '(no console file)';
}

export function readConsole(path: string): VfwLine[] {
  return existsSync(path) ? parseConsole(readFileSync(path, 'utf8')) : [];
}

/** Waits until the console holds a line for which `match` is true; returns it. */
export async function waitForConsole(
  path: string,
  what: string,
  match: (l: VfwLine, all: VfwLine[]) => boolean,
  ms = 90_000,
): Promise<VfwLine> {
  const seen = async () => {
    const all = readConsole(path);
    return all.find((l) => match(l, all));
  };
  return waitFor(`${what} on ${path}`, seen, ms, 100).catch((err: Error) => {
    throw new Error(`${err.message}; console ends with:\n${consoleTail(path, 15)}`);
  });
}
