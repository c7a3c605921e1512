// Writes the sysfs-shaped tree that src/host/inventory.ts reads, for one sim host: the same
// files and links a ConnectX PF in switchdev mode has, with the MACs the veths really got.

import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSimDevlinkState } from './devlink-emulator.js';
import { repNetdev, vfNetdev, vfPci, type SimHost } from './topology.js';

export async function writeSysfsTree(
  root: string,
  host: SimHost,
  vfs: number,
  macs: Map<string, string>,
): Promise<void> {
  const pciDir = (bdf: string) => join(root, 'bus/pci/devices', bdf);
  const netDir = (dev: string) => join(root, 'class/net', dev);

  await mkdir(pciDir(host.pfPci), { recursive: true });
  // As after a boot: SR-IOV off and the eswitch in legacy mode until `vfwire host setup`.
  await writeFile(join(pciDir(host.pfPci), 'sriov_numvfs'), '0\n');
  await writeFile(join(pciDir(host.pfPci), 'sriov_totalvfs'), `${vfs}\n`);
  await writeFile(join(pciDir(host.pfPci), 'sriov_drivers_autoprobe'), '1\n');
  await netdev(host.pf, host.pfPci, { phys_port_name: 'p0', phys_switch_id: host.switchId });
  await writeSimDevlinkState(pciDir(host.pfPci), { mode: 'legacy', flow_steering_mode: 'smfs' });
  if (host.failover) {
    // The NIC's second port: a PF of its own with its own eswitch, no VFs of vfwire's.
    const { pf2, pf2Pci } = host.failover;
    await mkdir(pciDir(pf2Pci), { recursive: true });
    for (const [file, value] of [
      ['sriov_numvfs', 0],
      ['sriov_totalvfs', 0],
      ['sriov_drivers_autoprobe', 1],
    ] as const)
      await writeFile(join(pciDir(pf2Pci), file), `${value}\n`);
    await netdev(pf2, pf2Pci, {
      phys_port_name: 'p1',
      phys_switch_id: host.switchId.replace(/.$/, (c) => (c === 'f' ? 'e' : 'f')),
    });
    await writeSimDevlinkState(pciDir(pf2Pci), { mode: 'legacy', flow_steering_mode: 'smfs' });
  }

  for (let i = 0; i < vfs; i++) {
    const bdf = vfPci(host, i);
    const vf = vfNetdev(host, i);
    await mkdir(vf ? join(pciDir(bdf), 'net', vf) : pciDir(bdf), { recursive: true });
    await symlink(`../${bdf}`, join(pciDir(host.pfPci), `virtfn${i}`));
    await symlink(`../${host.pfPci}`, join(pciDir(bdf), 'physfn'));
    if (vf) await netdev(vf, bdf, {});
    // Representors have no PCI device of their own in switchdev; the eswitch identifies them.
    await netdev(repNetdev(host, i), undefined, { phys_port_name: `pf0vf${i}`, phys_switch_id: host.switchId });
  }

  async function netdev(name: string, bdf: string | undefined, attrs: Record<string, string>): Promise<void> {
    await mkdir(netDir(name), { recursive: true });
    if (bdf) await symlink(`../../../bus/pci/devices/${bdf}`, join(netDir(name), 'device'));
    const all = { ...attrs, address: macs.get(name) ?? '00:00:00:00:00:00' };
    for (const [file, value] of Object.entries(all)) await writeFile(join(netDir(name), file), `${value}\n`);
  }
}
