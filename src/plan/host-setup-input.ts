// What `host setup` is asked to make, and the refusals of an input it cannot make.

import { ValidationError } from '../errors.js';
import type { PfSetup } from '../host/host-state.js';
import { IFNAME_RE, PCI_ADDRESS_RE } from '../identifiers.js';

export type FlowSteeringMode = 'dmfs' | 'smfs';

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

export function validateHostSetup(input: HostSetupInput): void {
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
