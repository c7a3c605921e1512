import { expect } from 'chai';
import { vfwireAliases } from '../../src/domain/device-aliases.js';

describe('vfwireAliases', () => {
  it('finds the ua-vfwire-N aliases of the live devices, nothing else', () => {
    const xml = `<domain type='kvm' id='3'><name>vm1</name><devices>
      <interface type='ethernet'><mac address='52:54:00:00:00:01'/><target dev='t0' managed='no'/><alias name='ua-vfwire-0'/></interface>
      <interface type='network'><alias name='net0'/></interface>
      <hostdev mode='subsystem' type='pci'><alias name='ua-vfwire-2'/></hostdev>
      <disk><alias name='ua-vfwire-x'/></disk>
    </devices><metadata><alias name='ua-vfwire-9'/></metadata></domain>`;
    expect([...vfwireAliases(xml)].sort()).to.deep.equal(['ua-vfwire-0', 'ua-vfwire-2']);
  });
});
