import { expect } from 'chai';
import { renderDeviceXml } from '../../src/attach/device-xml.js';
import { deviceAlias } from '../../src/domain/device-aliases.js';
import type { Lease } from '../../src/ledger/types.js';
import { expectGolden } from '../helpers/golden.js';

const lease: Lease = {
  key: '1f9d3c2e-4b5a-4c6d-8e7f-0a1b2c3d4e5f/0',
  vm: 'web1',
  uuid: '1f9d3c2e-4b5a-4c6d-8e7f-0a1b2c3d4e5f',
  index: 0,
  pf: 'enp3s0f0np0',
  vf: 3,
  pci: '0000:03:00.5',
  rep: 'enp3s0f0r3',
  vni: 100,
  mac: '52:54:00:12:34:56',
  mtu: 9000,
  since: '2026-11-26T12:00:00.000Z',
  state: 'active',
  attach: 'hostdev',
  undo: [],
};

describe('device XML', () => {
  it('real backend: the VF as a managed hostdev interface with its PCI address and MAC (golden)', () => {
    expectGolden('attach/hostdev-interface.xml', renderDeviceXml(lease));
  });

  it('sim libvirt host: the representor tap as an unmanaged ethernet interface (golden)', () => {
    expectGolden(
      'attach/sim-interface.xml',
      renderDeviceXml({ ...lease, attach: 'ethernet', rep: 'vfwsimt3', index: 1 }),
    );
  });

  it('marks every device with a user alias per interface', () => {
    expect(deviceAlias({ index: 2 })).to.equal('ua-vfwire-2');
  });

  it('refuses a malformed PCI address and a netns guest', () => {
    expect(() => renderDeviceXml({ ...lease, pci: '03:00.5' })).to.throw(/not DDDD:BB:SS.F/);
    expect(() => renderDeviceXml({ ...lease, attach: 'netns' })).to.throw(/not attached by libvirt/);
  });
});
