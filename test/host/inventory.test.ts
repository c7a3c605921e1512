// Inventory against a sysfs-shaped tree written by the sim's own tree writer, plus the oddities
// of real sysfs: a VF bound to vfio (no netdev), a representor of another eswitch.

import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VfwireError } from '../../src/errors.js';
import { readInventory } from '../../src/host/inventory.js';
import { writeSysfsTree } from '../../src/sim/sysfs-tree.js';
import { simHosts } from '../../src/sim/topology.js';

describe('inventory', () => {
  let root: string;
  const host = simHosts({ dir: '/run/x', prefix: 'x', vfs: 3 })[0]!;
  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'vfwt-sys-'));
    await writeSysfsTree(root, host, 3, new Map([['enp3s0f0v1', '02:11:22:33:44:55']]));
    // The tree is written as after a boot (SR-IOV off); host setup would enable the VFs.
    writeFileSync(join(root, 'bus/pci/devices/0000:03:00.0/sriov_numvfs'), '3\n');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('finds the PF, its VFs with PCI address, netdev, MAC and representor', async () => {
    const pf = (await readInventory(root, ['enp3s0f0np0'])).get('enp3s0f0np0')!;
    expect(pf).to.include({
      name: 'enp3s0f0np0',
      pci: '0000:03:00.0',
      numVfs: 3,
      totalVfs: 3,
      switchId: host.switchId,
    });
    expect(pf.vfs.map((v) => [v.index, v.pci, v.netdev, v.rep])).to.deep.equal([
      [0, '0000:03:00.2', 'enp3s0f0v0', 'enp3s0f0r0'],
      [1, '0000:03:00.3', 'enp3s0f0v1', 'enp3s0f0r1'],
      [2, '0000:03:00.4', 'enp3s0f0v2', 'enp3s0f0r2'],
    ]);
    expect(pf.vfs[1]!.mac).to.equal('02:11:22:33:44:55');
  });

  it('a VF bound to vfio-pci has no netdev; a representor of another eswitch is not ours', async () => {
    rmSync(join(root, 'bus/pci/devices/0000:03:00.2/net'), { recursive: true });
    writeFileSync(join(root, 'class/net/enp3s0f0r1/phys_switch_id'), 'ffffffffffffffff\n');
    const pf = (await readInventory(root, ['enp3s0f0np0'])).get('enp3s0f0np0')!;
    expect(pf.vfs[0]!.netdev).to.equal(undefined);
    expect(pf.vfs[1]!.rep).to.equal(undefined);
  });

  it('names a PF that is missing or has no SR-IOV', async () => {
    let err = await readInventory(root, ['eth7']).catch((e: unknown) => e);
    expect(err)
      .to.be.instanceOf(VfwireError)
      .with.property('message')
      .match(/PF eth7 not found under .*class\/net/);
    mkdirSync(join(root, 'bus/pci/devices/0000:00:1f.6'), { recursive: true });
    mkdirSync(join(root, 'class/net/eno1'));
    symlinkSync('../../../bus/pci/devices/0000:00:1f.6', join(root, 'class/net/eno1/device'));
    err = await readInventory(root, ['eno1']).catch((e: unknown) => e);
    expect(err)
      .to.be.instanceOf(VfwireError)
      .with.property('message')
      .match(/PF eno1 \(0000:00:1f\.6\) has no SR-IOV capability/);
  });
});
