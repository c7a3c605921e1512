// `vfwire host setup` as plain steps: the lab notes' per-boot sequence for each PF and, with
// `failover: active-backup`, mlx5 VF LAG (failover/vf-lag.ts). Pure: (wanted, current state) ->
// the steps that close the gap, each with the undo that restores what was read, so a second run
// on a set-up host plans nothing and `--dry-run` prints exactly what would change.
//
// Per PF, in the lab notes' order:
//   1. echo 0 > sriov_numvfs            mode and steering changes need the VFs gone
//   2. devlink ... flow_steering_mode dmfs cmode runtime   (IPsec packet offload wants dmfs)
//   3. devlink dev eswitch set ... mode switchdev
//   4. echo N > sriov_numvfs
//   then the underlay address and `mtu 9216 up` on the PF, and `mtu 9000 up` on each
//   representor (they exist only once the VFs do). With VF LAG, 1-3 for both PFs, the bond,
//   then 4 for both.
//
// Sysfs writes are `tee <path>` steps with the value on stdin (no shell), so dry runs show them.
// Undo restores the state read before (HostState); a field not read counts as the kernel's boot
// default (numvfs 0, legacy, MTU 1500, down, no address, no master) and the firmware's flow
// steering default is unknowable, so a step whose undo would restore nothing gets none.

import { ValidationError } from '../errors.js';
import type { Command, Step } from '../exec/step.js';
import { lagSteps, needsEnslave, type LagWant } from '../failover/vf-lag.js';
import type { HostState, PfSetup, PfState } from '../host/host-state.js';
import { addrStep, DEFAULT_LINK, HOST_OWNER, mtuUpStep } from '../host/link-steps.js';
import { refuseWhileIpsec } from './host-setup-ipsec.js';
import { validateHostSetup, type HostSetupInput } from './host-setup-input.js';

export type { HostSetupInput } from './host-setup-input.js';

/** The unconditional sequence: what a first run on a host whose state was not read does (the lab notes' form). */
export function renderHostSetup(input: HostSetupInput): Step[] {
  return planHostSetup(input, { pfs: {}, reps: {} });
}

/** Only the steps that bring `current` to what `input` wants, in an order the kernel accepts. */
export function planHostSetup(input: HostSetupInput, current: HostState): Step[] {
  validateHostSetup(input);
  const ns = input.netns;
  const fsm = input.flowSteeringMode ?? 'dmfs';
  const cidr = `${input.underlay.address}/${input.underlay.prefixLength}`;
  const uplink = input.underlay.interface;
  const lag: LagWant | undefined =
    input.failover?.mode === 'active-backup'
      ? { netns: ns, bond: uplink, miimon: input.failover.miimon ?? 100, cidr, mtu: input.underlay.mtu }
      : undefined;
  const cur = (pf: PfSetup): PfState => current.pfs[pf.name] ?? {};

  const needFsm = (pf: PfSetup) => cur(pf).flowSteeringMode !== fsm;
  const needMode = (pf: PfSetup) => cur(pf).eswitchMode !== 'switchdev';
  const needEnslave = (pf: PfSetup) => !!lag && needsEnslave(lag, current, pf);
  // A VF LAG is (re)formed: no PF of the NIC may have VFs meanwhile.
  const lagForms = !!lag && (!current.bond || input.pfs.some(needEnslave));
  const needVfsOff = (pf: PfSetup) => {
    const n = cur(pf).numVfs;
    return n === undefined || (n > 0 && (needFsm(pf) || needMode(pf) || lagForms || n !== pf.numVfs));
  };

  refuseWhileIpsec(input, current, { needFsm, needMode, needEnslave });

  const pfSteps = new Map<string, { off: Step[]; on: Step[] }>();
  for (const pf of input.pfs) {
    const c = cur(pf);
    const off: Step[] = [];
    const vfsOff = needVfsOff(pf);
    if (vfsOff) off.push(numVfsStep(input, pf, 0, c.numVfs));
    if (needFsm(pf)) off.push(flowSteeringStep(pf, fsm, c.flowSteeringMode));
    if (needMode(pf)) off.push(eswitchModeStep(pf, c.eswitchMode));
    // VFs go to vfio-pci when libvirt attaches them; a host netdev for each in between is only
    // udev churn and a window where the host talks on the tenant's VF. libvirt still binds them:
    // drivers/pci/pci-driver.c pci_device_can_probe lets a VF probe with autoprobe 0 when it has
    // a driver_override, which is how libvirt hands a VF to vfio-pci.
    if (c.driversAutoprobe !== 0) off.push(autoprobeStep(input, pf, c.driversAutoprobe));
    const vfsNow = vfsOff ? 0 : c.numVfs!;
    const on = vfsNow !== pf.numVfs ? [numVfsStep(input, pf, pf.numVfs, vfsNow)] : [];
    pfSteps.set(pf.name, { off, on });
  }
  const off = (pf: PfSetup) => pfSteps.get(pf.name)!.off;
  const on = (pf: PfSetup) => pfSteps.get(pf.name)!.on;

  const steps: Step[] = [];
  if (lag) {
    steps.push(...input.pfs.flatMap(off), ...lagSteps(lag, current, input.pfs), ...input.pfs.flatMap(on));
  } else {
    for (const pf of input.pfs) steps.push(...off(pf), ...on(pf));
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
  }

  for (const pf of input.pfs) {
    const recreated = on(pf).length > 0;
    for (const rep of pf.reps) {
      // Recreated VFs come with fresh representors (MTU 1500, down), whatever was read before.
      const before = recreated ? DEFAULT_LINK : { ...DEFAULT_LINK, ...current.reps[rep] };
      const known = !recreated && current.reps[rep] !== undefined;
      if (known && before.mtu === input.repMtu && before.up) continue;
      steps.push({ ...mtuUpStep(ns, rep, input.repMtu, before, true)[0]!, kind: 'rep-link' });
    }
  }
  return steps;
}

function flowSteeringStep(pf: PfSetup, mode: string, before: string | undefined): Step {
  const set = (m: string) => ({
    argv: [
      'devlink',
      'dev',
      'param',
      'set',
      `pci/${pf.pci}`,
      'name',
      'flow_steering_mode',
      'value',
      m,
      'cmode',
      'runtime',
    ],
  });
  return {
    kind: 'devlink-fsm',
    device: `pci/${pf.pci}`,
    owner: HOST_OWNER,
    do: set(mode),
    ...(before ? { undo: set(before) } : {}),
  };
}

function eswitchModeStep(pf: PfSetup, before: string | undefined): Step {
  const set = (mode: string) => ({ argv: ['devlink', 'dev', 'eswitch', 'set', `pci/${pf.pci}`, 'mode', mode] });
  return {
    kind: 'eswitch-mode',
    device: `pci/${pf.pci}`,
    owner: HOST_OWNER,
    do: set('switchdev'),
    undo: set(before ?? 'legacy'),
  };
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
