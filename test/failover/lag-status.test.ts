import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBondingProc, parseBondLink, parseMlx5LagDebugfs, reportLag } from '../../src/failover/lag-status.js';
import { FIXTURES } from '../helpers/golden.js';

const fixture = (name: string) => readFileSync(join(FIXTURES, 'failover', name), 'utf8');
const PORTS = ['enp3s0f0np0', 'enp3s0f1np1'];
const VF_LAG = parseMlx5LagDebugfs({
  state: 'active\n',
  type: 'switchdev\n',
  flags: 'shared_fdb:on\nfdb_selection_mode:native\n',
});

describe('failover status for doctor (failover/lag-status)', () => {
  it("reads /proc/net/bonding: mode, active port, each port's MII", () => {
    const s = parseBondingProc(fixture('proc-bonding-bond0.txt'), 'bond0');
    expect(s).to.deep.include({
      mode: 'active-backup',
      activePort: 'enp3s0f0np0',
      primaryPort: undefined,
      mii: 'up',
      miimonMs: 100,
    });
    expect(s.ports).to.deep.equal([
      { name: 'enp3s0f0np0', mii: 'up', speedMbps: 100000, linkFailures: 0, permanentAddress: '0c:42:a1:5e:10:2a' },
      { name: 'enp3s0f1np1', mii: 'up', speedMbps: 100000, linkFailures: 0, permanentAddress: '0c:42:a1:5e:10:2b' },
    ]);
  });

  it('reads ip -j -d link show bond0', () => {
    expect(parseBondLink(fixture('ip-link-bond0.json'), 'bond0')).to.deep.equal({
      mode: 'active-backup',
      activePort: 'enp3s0f0np0',
      primaryPort: undefined,
      mii: 'up',
      miimonMs: 100,
      ports: [],
      up: true,
    });
    expect(() => parseBondLink('[{"ifname":"bond0","linkinfo":{"info_kind":"veth"}}]', 'bond0')).to.throw(
      /not a bond \(veth\)/,
    );
    expect(() => parseBondLink('[]', 'bond0')).to.throw(/no such link/);
  });

  it("reads mlx5's lag debugfs", () => {
    expect(VF_LAG).to.deep.equal({ active: true, type: 'switchdev', sharedFdb: true });
    expect(parseMlx5LagDebugfs({ state: 'disabled\n' })).to.deep.equal({
      active: false,
      type: undefined,
      sharedFdb: undefined,
    });
    expect(() => parseMlx5LagDebugfs({ state: 'maybe' })).to.throw(/unexpected "maybe"/);
  });

  it('a healthy VF LAG: ok, with the active port named', () => {
    const r = reportLag('bond0', parseBondingProc(fixture('proc-bonding-bond0.txt')), PORTS, VF_LAG);
    expect(r.ok).to.equal(true);
    expect(r.activePort).to.equal('enp3s0f0np0');
    expect(r.lines).to.deep.equal([
      'bond0: active-backup, miimon 100 ms, MII up',
      'active port: enp3s0f0np0 (MII up, 100 Gb/s)',
      'backup port: enp3s0f1np1 (MII up)',
      'mlx5 VF LAG: active (switchdev, shared FDB on)',
    ]);
  });

  it('after a failover: the other port is active, and the lost one is reported with what to check', () => {
    const r = reportLag('bond0', parseBondingProc(fixture('proc-bonding-bond0-failed-over.txt')), PORTS, VF_LAG);
    expect(r.ok).to.equal(false);
    expect(r.activePort).to.equal('enp3s0f1np1');
    expect(r.lines).to.include(
      'backup port: enp3s0f0np0 MII down: no failover until its link is back (check the cable and the upstream switch)',
    );
  });

  it('a bond in the wrong mode, a missing port or an inactive mlx5 LAG fails with the fix', () => {
    const proc = fixture('proc-bonding-bond0.txt');
    const rr = reportLag(
      'bond0',
      parseBondingProc(proc.replace('fault-tolerance (active-backup)', 'load balancing (round-robin)')),
      PORTS,
    );
    expect(rr.lines[0]).to.equal(
      'bond0: mode balance-rr, failover needs active-backup (the one mode in which the kernel moves xfrm offload between ports); fix: ip link del bond0, then vfwire host setup',
    );
    const one = reportLag('bond0', parseBondingProc(proc.split('\n\nSlave Interface: enp3s0f1np1')[0]!), PORTS, VF_LAG);
    expect(one.lines).to.include('bond0: enp3s0f1np1 not in the bond; fix: vfwire host setup');
    const off = reportLag('bond0', parseBondingProc(proc), PORTS, parseMlx5LagDebugfs({ state: 'disabled' }));
    expect(off.ok).to.equal(false);
    expect(off.lines.at(-1)).to.match(/^mlx5 VF LAG: disabled, VFs do not fail over/);
    const down = reportLag(
      'bond0',
      parseBondingProc(proc.replace('Currently Active Slave: enp3s0f0np0', 'Currently Active Slave: None')),
      PORTS,
    );
    expect(down.lines).to.include('bond0: no active port: the underlay is down');
  });

  it("refuses text that is not the bonding driver's", () => {
    expect(() => parseBondingProc('hello\n', 'bond0')).to.throw(/\/proc\/net\/bonding\/bond0: no "Bonding Mode" line/);
  });
});
