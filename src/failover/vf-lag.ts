// `vfwire host setup` as plain steps: the lab notes' per-boot sequence for each PF and, with
// `failover: active-backup`, mlx5 VF LAG over the NIC's two ports. Pure: (wanted, current state)
// -> the steps that close the gap, each with the undo that restores what was read, so a second
// run on a set-up host plans nothing and `--dry-run` prints exactly what would change.
//
// Without failover, per PF, in the lab notes' order:
//   1. echo 0 > sriov_numvfs            mode and steering changes need the VFs gone
//   2. devlink ... flow_steering_mode dmfs cmode runtime   (IPsec packet offload wants dmfs)
//   3. devlink dev eswitch set ... mode switchdev
//   4. echo N > sriov_numvfs
//   then the underlay address and `mtu 9216 up` on the PF, and `mtu 9000 up` on each
//   representor (they exist only once the VFs do).
//
// With failover (VF LAG), the documented order: both PFs to switchdev first, then the bond over
// them, the underlay on the bond, and the VFs last:
//   1-3 as above, for both PFs, before any bonding: mlx5 forms a LAG only when both PFs are in
//       the same eswitch mode and none has VFs in legacy mode (mlx5_lag_check_prereq,
//       lag/lag.c); NVIDIA's VF-LAG quick start guide ("To enable VF-LAG, the NIC should be in
//       SRIOV switchdev mode") and its TripleO notes (a `linux_bond` of two `sriov_pf` members
//       with `link_mode: switchdev`, bonding_options "mode=active-backup miimon=100") build
//       the bond over PFs already in switchdev;
//   4. ip link add bond0 type bond mode active-backup miimon 100
//   5. per PF: the underlay address off it (if a non-failover run left one), `down` (a port is
//      enslaved down; bonding opens it itself), `master bond0`;
//   6. the underlay address on the bond, `mtu 9216 up` on the bond (bonding passes the MTU to
//      its slaves);
//   7. echo N > sriov_numvfs per PF: VFs created after the LAG is active, since mlx5 (de)activates
//      a VF LAG only with no VFs bound ("Make sure all VFs are unbound prior to VF LAG activation
//      or deactivation", lag/lag.c);
//   8. representors `mtu 9000 up`.
// active-backup only: it is the one bonding mode in which the kernel moves xfrm offload between
// slaves (bond_ipsec_* in bond_main.c), so packet-offloaded SAs survive a failover.
//
// Sysfs writes are `tee <path>` steps with the value on stdin (no shell), so dry runs show them.
// Undo restores the state read before (HostState); a field not read counts as the kernel's boot
// default (numvfs 0, legacy, MTU 1500, down, no address, no master) and the firmware's flow
// steering default is unknowable, so a step whose undo would restore nothing gets none.

import { ResourceError, ValidationError } from '../errors.js';
import { ip } from '../exec/tools.js';
import type { EswitchMode } from '../host/devlink.js';
import { IFNAME_RE, PCI_ADDRESS_RE } from '../host/identifiers.js';
import type { Command, Step, StepOwner } from '../exec/step.js';

/** Host state: `host setup` makes and keeps it, the ledger records no undo of it. */
const HOST_OWNER: StepOwner = { kind: 'host' };

const DEFAULT_LINK = { mtu: 1500, up: false };

export type FlowSteeringMode = 'dmfs' | 'smfs';

export interface PfSetup {
  name: string;
  /** PCI address of the PF, as devlink names it (pci/<this>). */
  pci: string;
  /** VFs wanted on this PF (0 leaves SR-IOV off). */
  numVfs: number;
  /** Representor names of VFs 0..numVfs-1, as the driver will name them (enp3s0f0r0, ...); [] to leave them alone. */
  reps: string[];
}

export interface HostSetupInput {
  pfs: PfSetup[];
  underlay: {
    /** The PF carrying the underlay, or with failover the bond's name (bond0). */
    interface: string;
    address: string;
    prefixLength: number;
    mtu: number;
  };
  /** MTU of each representor (the lab notes' 9000). */
  repMtu: number;
  /** '/sys' on a real host, the sim's tree in tests. */
  sysfsRoot: string;
  /** Where the netdevs live (undefined: this netns); devlink and sysfs are not per netns. */
  netns?: string;
  /** Default dmfs, as the lab notes set it for IPsec offload. */
  flowSteeringMode?: FlowSteeringMode;
  /**
   * active-backup: mlx5 VF LAG over exactly two PFs, bond named by underlay.interface.
   * pf-switch: no bond; the address on underlay.interface, or left on the other PF where
   * `ipsec watch` moved it.
   */
  failover?: { mode: 'active-backup'; miimon?: number } | { mode: 'pf-switch' };
}

/** What host setup read. An absent field was not read and counts as "differs". */
export interface PfState {
  numVfs?: number;
  /** sriov_drivers_autoprobe: 1 binds a host driver to every new VF. */
  driversAutoprobe?: number;
  eswitchMode?: EswitchMode;
  flowSteeringMode?: string;
  /** CIDRs, e.g. 192.168.80.2/24. */
  addresses?: string[];
  mtu?: number;
  up?: boolean;
  /** The master (bond) it is enslaved to; null: none. */
  master?: string | null;
}

export interface LinkState {
  mtu?: number;
  up?: boolean;
}

export interface BondState {
  mode: string;
  miimon: number;
  addresses: string[];
  mtu: number;
  up: boolean;
}

export interface HostState {
  pfs: Record<string, PfState>;
  reps: Record<string, LinkState>;
  /** The failover bond as it exists; undefined or null: none. */
  bond?: BondState | null;
  /** IPsec SAs/policies are offloaded now (vfwire ipsec up): mode changes would break them. */
  ipsecActive?: boolean;
}

/** The unconditional sequence: what a first run on a host whose state was not read does (the lab notes' form). */
export function renderHostSetup(input: HostSetupInput): Step[] {
  return planHostSetup(input, { pfs: {}, reps: {} });
}

/** Only the steps that bring `current` to what `input` wants, in an order the kernel accepts. */
export function planHostSetup(input: HostSetupInput, current: HostState): Step[] {
  validate(input);
  const ns = input.netns;
  const fsm = input.flowSteeringMode ?? 'dmfs';
  const cidr = `${input.underlay.address}/${input.underlay.prefixLength}`;
  const lag = input.failover?.mode === 'active-backup' ? input.failover : undefined;
  const uplink = input.underlay.interface;
  const cur = (pf: PfSetup): PfState => current.pfs[pf.name] ?? {};

  const needFsm = (pf: PfSetup) => cur(pf).flowSteeringMode !== fsm;
  const needMode = (pf: PfSetup) => cur(pf).eswitchMode !== 'switchdev';
  const needEnslave = (pf: PfSetup) => !!lag && cur(pf).master !== uplink;
  const bondAbsent = !current.bond;
  // A VF LAG is (re)formed: no PF of the NIC may have VFs meanwhile.
  const lagForms = !!lag && (bondAbsent || input.pfs.some(needEnslave));
  const needVfsOff = (pf: PfSetup) => {
    const n = cur(pf).numVfs;
    return n === undefined || (n > 0 && (needFsm(pf) || needMode(pf) || lagForms || n !== pf.numVfs));
  };

  refuseWhileIpsec(input, current, { needFsm, needMode, needEnslave, cidr });

  const pfSteps = new Map<string, { off: Step[]; on: Step[] }>();
  for (const pf of input.pfs) {
    const c = cur(pf);
    const off: Step[] = [];
    const vfsOff = needVfsOff(pf);
    if (vfsOff) off.push(numVfsStep(input, pf, 0, c.numVfs));
    if (needFsm(pf)) {
      const argv = (mode: string) => [
        'devlink',
        'dev',
        'param',
        'set',
        `pci/${pf.pci}`,
        'name',
        'flow_steering_mode',
        'value',
        mode,
        'cmode',
        'runtime',
      ];
      off.push({
        kind: 'devlink-fsm',
        device: `pci/${pf.pci}`,
        owner: HOST_OWNER,
        do: { argv: argv(fsm) },
        ...(c.flowSteeringMode ? { undo: { argv: argv(c.flowSteeringMode) } } : {}),
      });
    }
    if (needMode(pf)) {
      const argv = (mode: string) => ['devlink', 'dev', 'eswitch', 'set', `pci/${pf.pci}`, 'mode', mode];
      off.push({
        kind: 'eswitch-mode',
        device: `pci/${pf.pci}`,
        owner: HOST_OWNER,
        do: { argv: argv('switchdev') },
        undo: { argv: argv(c.eswitchMode ?? 'legacy') },
      });
    }
    // VFs go to vfio-pci when libvirt attaches them; a host netdev for each in between is only
    // udev churn and a window where the host talks on the tenant's VF. libvirt still binds them:
    // drivers/pci/pci-driver.c pci_device_can_probe lets a VF probe with autoprobe 0 when it has
    // a driver_override, which is how libvirt hands a VF to vfio-pci.
    if (c.driversAutoprobe !== 0) off.push(autoprobeStep(input, pf, c.driversAutoprobe));
    const vfsNow = vfsOff ? 0 : c.numVfs!;
    const on = vfsNow !== pf.numVfs ? [numVfsStep(input, pf, pf.numVfs, vfsNow)] : [];
    pfSteps.set(pf.name, { off, on });
  }
  const recreated = (pf: PfSetup) => pfSteps.get(pf.name)!.on.length > 0;

  const steps: Step[] = [];
  if (!lag) {
    for (const pf of input.pfs) steps.push(...pfSteps.get(pf.name)!.off, ...pfSteps.get(pf.name)!.on);
    // pf-switch: wherever the watch last moved the address, it stays.
    const holder =
      input.failover?.mode === 'pf-switch'
        ? input.pfs.find((pf) => cur(pf).addresses?.includes(cidr))?.name
        : undefined;
    for (const pf of input.pfs) {
      const c = cur(pf);
      if (c.master) {
        throw new ValidationError(
          `host setup: ${pf.name} is a port of ${c.master}, but failover is off: remove the bond (ip link del ${c.master}) and run host setup again`,
        );
      }
      if (pf.name === (holder ?? uplink) && !c.addresses?.includes(cidr)) steps.push(addrStep(ns, pf.name, cidr));
      steps.push(...mtuUpStep(ns, pf.name, input.underlay.mtu, c));
    }
  } else {
    for (const pf of input.pfs) steps.push(...pfSteps.get(pf.name)!.off);
    steps.push(...bondSteps(ns, uplink, lag.miimon ?? 100, current.bond));
    for (const pf of input.pfs) {
      if (!needEnslave(pf)) continue;
      const c = cur(pf);
      if (c.addresses?.includes(cidr)) steps.push({ ...addrStep(ns, pf.name, cidr, 'del'), kind: 'uplink-addr-move' });
      if (c.up !== false) steps.push(linkStep(ns, 'pf-down', pf.name, ['down'], c.up === true ? ['up'] : undefined));
      steps.push(
        linkStep(ns, 'bond-enslave', pf.name, ['master', uplink], c.master ? ['master', c.master] : ['nomaster']),
      );
    }
    if (bondAbsent || !current.bond!.addresses.includes(cidr)) steps.push(addrStep(ns, uplink, cidr));
    steps.push(...mtuUpStep(ns, uplink, input.underlay.mtu, current.bond ?? DEFAULT_LINK));
    for (const pf of input.pfs) steps.push(...pfSteps.get(pf.name)!.on);
  }

  for (const pf of input.pfs) {
    for (const rep of pf.reps) {
      // Recreated VFs come with fresh representors (MTU 1500, down), whatever was read before.
      const before = recreated(pf) ? DEFAULT_LINK : { ...DEFAULT_LINK, ...current.reps[rep] };
      const known = !recreated(pf) && current.reps[rep] !== undefined;
      if (known && before.mtu === input.repMtu && before.up) continue;
      steps.push({ ...mtuUpStep(ns, rep, input.repMtu, before, true)[0]!, kind: 'rep-link' });
    }
  }
  return steps;
}

function autoprobeStep(input: HostSetupInput, pf: PfSetup, before: number | undefined): Step {
  const write = pfSysfsWrite(input, pf, 'sriov_drivers_autoprobe');
  // Unread, it is the kernel's default: drivers/pci/iov.c sriov_init sets drivers_autoprobe true.
  return { kind: 'sriov-autoprobe', device: pf.name, owner: HOST_OWNER, do: write(0), undo: write(before ?? 1) };
}

function numVfsStep(input: HostSetupInput, pf: PfSetup, n: number, before: number | undefined): Step {
  const write = pfSysfsWrite(input, pf, 'sriov_numvfs');
  const restore = before ?? 0;
  return {
    kind: n === 0 ? 'sriov-disable' : 'sriov-enable',
    device: pf.name,
    owner: HOST_OWNER,
    do: write(n),
    ...(restore !== n ? { undo: write(restore) } : {}),
  };
}

/** A write to one of the PF's device attributes: `tee` with the value on stdin (no shell). */
function pfSysfsWrite(input: HostSetupInput, pf: PfSetup, file: string): (v: number) => Command {
  const path = `${input.sysfsRoot.replace(/\/+$/, '')}/class/net/${pf.name}/device/${file}`;
  return (v) => ({ argv: ['tee', path], stdin: `${v}\n` });
}

function bondSteps(ns: string | undefined, bond: string, miimon: number, cur: BondState | null | undefined): Step[] {
  if (!cur) {
    return [
      {
        kind: 'bond-create',
        device: bond,
        owner: HOST_OWNER,
        do: { argv: ip(ns, 'link', 'add', bond, 'type', 'bond', 'mode', 'active-backup', 'miimon', String(miimon)) },
        undo: { argv: ip(ns, 'link', 'del', bond) },
      },
    ];
  }
  if (cur.mode !== 'active-backup') {
    throw new ValidationError(
      `host setup: ${bond} exists in mode ${cur.mode}; failover needs active-backup, and vfwire does not rebuild a bond it did not make: remove it (ip link del ${bond}) and run host setup again`,
    );
  }
  if (cur.miimon === miimon) return [];
  const set = (m: number) => ({ argv: ip(ns, 'link', 'set', 'dev', bond, 'type', 'bond', 'miimon', String(m)) });
  return [{ kind: 'bond-miimon', device: bond, owner: HOST_OWNER, do: set(miimon), undo: set(cur.miimon) }];
}

function addrStep(ns: string | undefined, dev: string, cidr: string, verb: 'add' | 'del' = 'add'): Step {
  const cmd = (v: string) => ({ argv: ip(ns, 'addr', v, cidr, 'dev', dev) });
  return {
    kind: 'uplink-addr',
    device: dev,
    owner: HOST_OWNER,
    do: cmd(verb),
    undo: cmd(verb === 'add' ? 'del' : 'add'),
  };
}

function linkStep(
  ns: string | undefined,
  kind: string,
  dev: string,
  args: string[],
  undoArgs: string[] | undefined,
): Step {
  return {
    kind,
    device: dev,
    owner: HOST_OWNER,
    do: { argv: ip(ns, 'link', 'set', 'dev', dev, ...args) },
    ...(undoArgs ? { undo: { argv: ip(ns, 'link', 'set', 'dev', dev, ...undoArgs) } } : {}),
  };
}

// `mtu M up` when either differs; the undo puts back the MTU and state read before.
function mtuUpStep(ns: string | undefined, dev: string, mtu: number, before: LinkState, force = false): Step[] {
  if (!force && before.mtu === mtu && before.up === true) return [];
  const prev = { ...DEFAULT_LINK, ...before };
  return [
    linkStep(ns, 'uplink-link', dev, ['mtu', String(mtu), 'up'], ['mtu', String(prev.mtu), prev.up ? 'up' : 'down']),
  ];
}

// mlx5 refuses an eswitch mode change while IPsec rules exist, a steering mode change tears
// down the tables the offloaded SAs live in, and a PF that goes down (to be enslaved) loses its
// offloaded SAs: with IPsec up, none of these may be planned.
function refuseWhileIpsec(
  input: HostSetupInput,
  current: HostState,
  need: {
    needFsm: (pf: PfSetup) => boolean;
    needMode: (pf: PfSetup) => boolean;
    needEnslave: (pf: PfSetup) => boolean;
    cidr: string;
  },
): void {
  if (!current.ipsecActive) return;
  const why: string[] = [];
  for (const pf of input.pfs) {
    if (need.needMode(pf))
      why.push(`${pf.name}: eswitch mode ${current.pfs[pf.name]?.eswitchMode ?? 'unknown'} -> switchdev`);
    if (need.needFsm(pf))
      why.push(
        `${pf.name}: flow steering ${current.pfs[pf.name]?.flowSteeringMode ?? 'unknown'} -> ${input.flowSteeringMode ?? 'dmfs'}`,
      );
    if (need.needEnslave(pf)) why.push(`${pf.name}: down and into ${input.underlay.interface}`);
  }
  if (why.length) {
    throw new ResourceError(
      `host setup: IPsec offload is active, and ${why.join('; ')} would remove the NIC's IPsec state (mlx5 refuses an eswitch mode change while IPsec rules exist; a PF that goes down loses its offloaded SAs): run vfwire ipsec down, then host setup, then vfwire ipsec up`,
    );
  }
}

function validate(input: HostSetupInput): void {
  const bad = (msg: string) => new ValidationError(`host setup: ${msg}`);
  if (input.pfs.length === 0) throw bad('no PF to set up');
  const names = new Set<string>();
  for (const pf of input.pfs) {
    if (!IFNAME_RE.test(pf.name)) throw bad(`pf ${JSON.stringify(pf.name)} is not an interface name`);
    if (names.has(pf.name)) throw bad(`pf ${pf.name} is listed twice`);
    names.add(pf.name);
    if (!PCI_ADDRESS_RE.test(pf.pci))
      throw bad(`pf ${pf.name}: pci ${JSON.stringify(pf.pci)} is not a PCI address like 0000:03:00.0`);
    if (!Number.isInteger(pf.numVfs) || pf.numVfs < 0 || pf.numVfs > 127)
      throw bad(`pf ${pf.name}: ${pf.numVfs} VFs (ConnectX-6 Dx: 0..127)`);
    // No names: the representors live elsewhere and are not host setup's to configure.
    if (pf.reps.length !== 0 && pf.reps.length !== pf.numVfs)
      throw bad(`pf ${pf.name}: ${pf.numVfs} VFs but ${pf.reps.length} representor names`);
    for (const r of pf.reps)
      if (!IFNAME_RE.test(r)) throw bad(`pf ${pf.name}: representor ${JSON.stringify(r)} is not an interface name`);
  }
  const u = input.underlay;
  if (!IFNAME_RE.test(u.interface))
    throw bad(`underlay interface ${JSON.stringify(u.interface)} is not an interface name`);
  if (!/^(\d{1,3})(\.\d{1,3}){3}$/.test(u.address) || u.address.split('.').some((o) => Number(o) > 255))
    throw bad(`underlay address ${JSON.stringify(u.address)} is not IPv4`);
  if (!Number.isInteger(u.prefixLength) || u.prefixLength < 1 || u.prefixLength > 32)
    throw bad(`underlay prefix length ${u.prefixLength} is not 1..32`);
  if (input.failover?.mode === 'pf-switch') {
    if (input.pfs.length !== 2)
      throw bad(`failover: pf-switch moves the underlay between the NIC's two PFs; ${input.pfs.length} given`);
    if (!names.has(u.interface))
      throw bad(
        `failover: pf-switch puts the underlay on a PF, and ${u.interface} is not one (${[...names].join(', ')})`,
      );
  } else if (input.failover) {
    if (input.pfs.length !== 2) throw bad(`failover: active-backup bonds the NIC's two PFs; ${input.pfs.length} given`);
    if (names.has(u.interface)) throw bad(`failover: the underlay interface must be the bond, not PF ${u.interface}`);
    const m = input.failover.miimon ?? 100;
    if (!Number.isInteger(m) || m < 1) throw bad(`failover: miimon ${m} must be a positive number of ms`);
  } else if (!names.has(u.interface)) {
    throw bad(
      `underlay interface ${u.interface} is not one of the PFs (${[...names].join(', ')}); a bond needs failover: active-backup`,
    );
  }
}
