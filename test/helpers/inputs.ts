// Inputs for planner tests, written inline so each test shows the state it starts from.

import { parseConfig, type Config } from '../../src/config/config.js';
import type { Lease } from '../../src/ledger/types.js';
import type { DomainRequest, InterfaceSpec } from '../../src/domain/interface-spec.js';
import type { Inventory, PfInfo } from '../../src/host/inventory.js';

export function config(yaml: string): Config {
  return parseConfig(yaml, '/etc/vfwire/config.yaml');
}

export const REAL_CONFIG = `
backend: real
underlay: { interface: enp3s0f0np0, address: 192.168.80.2 }
pfs: [{ name: enp3s0f0np0 }]
peers:
  - { name: hostb, address: 192.168.80.3 }
  - { name: hostc, address: 192.168.80.4, vnis: [200] }
`;

export const SIM_CONFIG = `
backend: sim
netns: vfwsim-a
sysfs_root: /run/vfwire-sim/a/sys
underlay: { interface: enp3s0f0np0, address: 198.18.0.1 }
pfs: [{ name: enp3s0f0np0 }]
peers: [{ name: sim-b, address: 198.18.0.2 }]
`;

/** The sim's libvirt host: bridges and taps in the root netns, underlay in host A's netns. */
export const SIM_LIBVIRT_CONFIG = `
backend: sim
sysfs_root: /run/vfwire-sim/a/sys
underlay: { interface: enp3s0f0np0, address: 198.18.0.1, netns: vfwsim-a }
pfs: [{ name: enp3s0f0np0 }]
peers: [{ name: sim-b, address: 198.18.0.2 }]
`;

/** A PF named like the lab notes' with `n` VFs, each with its netdev and representor. */
export function pf(n: number, name = 'enp3s0f0np0', fn = 0): PfInfo {
  const base = name.replace(/np\d+$/, '');
  return {
    name,
    pci: `0000:03:00.${fn}`,
    switchId: 'abcdef0123456789',
    numVfs: n,
    totalVfs: 16,
    vfs: Array.from({ length: n }, (_, i) => ({
      index: i,
      pci: `0000:03:${(2 + i) >> 3 === 0 ? '00' : '01'}.${(2 + i) % 8}`,
      netdev: `${base}v${i}`,
      mac: `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`,
      rep: `${base}r${i}`,
    })),
  };
}

export function inventory(...pfs: PfInfo[]): Inventory {
  return new Map(pfs.map((p) => [p.name, p]));
}

export const UUID1 = '1f9d3c2e-4b5a-4c6d-8e7f-0a1b2c3d4e5f';
export const UUID2 = '2a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d';

export function request(
  name: string,
  uuid: string,
  ifaces: Array<Partial<InterfaceSpec> & { vni: number }>,
): DomainRequest {
  return {
    name,
    uuid,
    interfaces: ifaces.map((i, index) => ({ index, encrypt: 'off', mac: `52:54:00:00:0${index}:0${uuid[0]}`, ...i })),
  };
}

/** A ledger lease of VF 0 on enp3s0f0np0, VNI 100, for tests that seed the ledger by hand. */
export function testLease(key: string, vm: string, fields: Partial<Lease> = {}): Lease {
  return {
    key,
    vm,
    uuid: key.slice(0, 36),
    index: 0,
    pf: 'enp3s0f0np0',
    vf: 0,
    pci: '0000:03:00.2',
    rep: 'enp3s0f0r0',
    vni: 100,
    mac: '52:54:00:00:00:01',
    mtu: 9000,
    since: new Date().toISOString(),
    state: 'active',
    attach: 'netns',
    undo: [],
    ...fields,
  };
}
