// The simulated lab in one table: two hosts, each a network namespace whose PF is one end of a
// veth "cable" to the other host's PF (the underlay), and N VFs, each a veth pair whose ends are
// the VF netdev and its representor, named as mlx5 names them in the lab notes.
//
// With `libvirt`, host A is the machine's libvirt host instead: QEMU VMs started by libvirtd get
// their NIC from it, so its representors are taps in the root namespace (libvirt opens them by
// name there, as it would a real representor), its VFs have no host netdev (as when bound to
// vfio-pci), and only its underlay stays in the netns. Host B keeps netns guests.
// With `failover`, each host has the NIC's second PF too, and the cable becomes two switches:
// PF0s on one, PF1s on the other, joined by an inter-switch link as a redundant fabric has them.
// `active-backup` bonds the PFs (vfwire's VF LAG host setup; a kernel with bonding, the lab's),
// `pf-switch` leaves them apart with the underlay on PF0 until `ipsec watch` moves it.
// Every address comes from 198.18.0.0/15 and lives only inside namespaces the sim creates.

export interface SimOptions {
  /** Directory for the sim's sysfs trees, configs, ledgers and logs. */
  dir: string;
  /** Prefix of every netns the sim creates; tests use a random one. */
  prefix: string;
  /** VFs per PF. */
  vfs: number;
  /** Host A serves libvirt/QEMU VMs (taps in the root netns) instead of netns guests. */
  libvirt?: boolean;
  /** Two PFs per host through two switches: bonded (active-backup, needs bonding) or not (pf-switch). */
  failover?: 'active-backup' | 'pf-switch';
  /** The hosts' overlay (default bridge); ovs: each host's Open vSwitch in its netns, started by host setup. */
  overlay?: 'bridge' | 'ovs';
}

export const DEFAULT_SIM: SimOptions = { dir: '/run/vfwire-sim', prefix: 'vfwsim', vfs: 8 };
export const MAX_SIM_VFS = 64;

export interface SimHost {
  id: 'a' | 'b';
  netns: string;
  underlayIp: string;
  pf: string;
  pfPci: string;
  switchId: string;
  dir: string;
  configPath: string;
  /** Set when the host's VFs are taps in the root netns, named `${tapPrefix}${i}`. */
  tapPrefix?: string;
  /** The failover flavour's second PF (no VFs) and, with active-backup, the bond over both that carries the underlay. */
  failover?: { mode: 'active-backup' | 'pf-switch'; pf2: string; pf2Pci: string; bond?: string };
}

const PF = 'enp3s0f0np0';
const PF_PCI = '0000:03:00.0';
const PF2 = 'enp3s0f1np1';
const PF2_PCI = '0000:03:00.1';
const BOND = 'bond0';
export const UNDERLAY_PREFIX_LEN = 24;
export const UNDERLAY_MTU = 9216;

export function simHosts(opts: SimOptions): SimHost[] {
  return (['a', 'b'] as const).map((id, i) => ({
    id,
    netns: `${opts.prefix}-${id}`,
    underlayIp: `198.18.0.${i + 1}`,
    pf: PF,
    pfPci: PF_PCI,
    switchId: `00${id}0c0ffee0000${i}`,
    dir: `${opts.dir}/${id}`,
    configPath: `${opts.dir}/${id}/config.yaml`,
    tapPrefix: opts.libvirt && id === 'a' ? `${opts.prefix}t` : undefined,
    failover: opts.failover
      ? { mode: opts.failover, pf2: PF2, pf2Pci: PF2_PCI, ...(opts.failover === 'active-backup' ? { bond: BOND } : {}) }
      : undefined,
  }));
}

/** The failover flavour's fabric: one netns holding both switches (bridges sw0 and sw1). */
export function switchNetns(opts: SimOptions): string {
  return `${opts.prefix}-sw`;
}

/** The switch port (in switchNetns) that host `host`'s PF `pf` (0 or 1) is cabled to. */
export function switchPort(host: SimHost, pf: 0 | 1): string {
  return `${host.id}${pf}`;
}

/** The VF's netdev in the host; none on a libvirt host (the guest end is QEMU's NIC). */
export function vfNetdev(host: SimHost, i: number): string | undefined {
  return host.tapPrefix ? undefined : `${host.pf.replace(/np\d+$/, '')}v${i}`;
}

export function repNetdev(host: SimHost, i: number): string {
  return host.tapPrefix ? `${host.tapPrefix}${i}` : `${host.pf.replace(/np\d+$/, '')}r${i}`;
}

/** VFs follow the PF on the bus: functions 2, 3, ... of device 00, then device 01, ... */
export function vfPci(host: SimHost, i: number): string {
  const fn = i + 2;
  const [domainBus] = host.pfPci.split(/:(?=[0-9a-f]{2}\.)/);
  return `${domainBus}:${Math.floor(fn / 8)
    .toString(16)
    .padStart(2, '0')}.${fn % 8}`;
}

export function guestNetns(opts: SimOptions, guest: string): string {
  return `${opts.prefix}-g-${guest}`;
}
