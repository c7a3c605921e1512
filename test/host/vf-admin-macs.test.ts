import { expect } from 'chai';
import { parseVfAdminMacs } from '../../src/host/vf-admin-macs.js';

describe('VF admin MACs from ip link show dev PF', () => {
  it('reads vfinfo_list as iproute2 prints it, skipping what is not a MAC', () => {
    const json = JSON.stringify([
      {
        ifname: 'enp3s0f0np0',
        vfinfo_list: [
          { vf: 0, link_type: 'ether', address: '00:00:00:00:00:00' },
          { vf: 1, address: '52:54:00:12:34:56' },
          { vf: 2, address: '-x' },
        ],
      },
    ]);
    expect([...parseVfAdminMacs(json, 'enp3s0f0np0')]).to.deep.equal([
      [0, '00:00:00:00:00:00'],
      [1, '52:54:00:12:34:56'],
    ]);
    expect([...parseVfAdminMacs(JSON.stringify([{ ifname: 'eth0' }]), 'eth0')]).to.deep.equal([]);
    expect(() => parseVfAdminMacs('[]', 'eth0')).to.throw(/expected one link/);
  });
});
