// Integration: two sim hosts, guests on VNIs 100 and 200, tenant isolation proven by traffic,
// and nothing left after teardown.

import { expect } from 'chai';
import { startGuest, stopGuest, type GuestSpec } from '../../src/sim/guest.js';
import { probeAll } from '../../src/sim/reachability.js';
import { listNetns } from '../../src/sim/sim-host.js';
import {
  downTestSim,
  expectNoVfwireOn,
  leaseOf,
  leasesOn,
  links,
  runner,
  upTestSim,
  type TestSim,
} from '../helpers/sim.js';

const GUESTS: GuestSpec[] = [
  { name: 'g1', host: 'a', vni: 100, ip: '198.19.100.1/24', encrypt: 'off' },
  { name: 'g2', host: 'b', vni: 100, ip: '198.19.100.2/24', encrypt: 'off' },
  { name: 'g3', host: 'b', vni: 200, ip: '198.19.100.3/24', encrypt: 'off' },
  { name: 'g4', host: 'a', vni: 200, ip: '198.19.100.4/24', encrypt: 'off' },
];

describe('sim: tenant isolation across two hosts', function () {
  this.timeout(120_000);
  let sim: TestSim | undefined;

  before(async () => {
    sim = await upTestSim(4);
    for (const g of GUESTS) await startGuest(sim.opts, g, runner);
  });

  after(async () => {
    if (sim) for (const g of GUESTS) await stopGuest(sim.opts, g.name, runner).catch(() => undefined);
    await downTestSim(sim);
  });

  it('same VNI reaches across hosts; another VNI reaches nothing', async () => {
    const probes = await probeAll(sim!.opts, GUESTS, runner);
    const wrong = probes.filter((p) => p.reached !== p.expected);
    expect(wrong, JSON.stringify(wrong)).to.deep.equal([]);
    // Both kinds of outcome happened: the proof is not vacuous.
    expect(probes.filter((p) => p.reached)).to.have.length(4);
    expect(probes.filter((p) => !p.reached)).to.have.length(8);
  });

  it('records the leases and joins each representor to its VNI bridge', async () => {
    const leases = (await leasesOn(sim!.a)).sort((x, y) => x.vni - y.vni);
    expect(leases.map((l) => [l.vm, l.vni, l.state])).to.deep.equal([
      ['g1', 100, 'active'],
      ['g4', 200, 'active'],
    ]);
    const host = await links(sim!.a.netns);
    for (const l of leases) {
      expect(host.get(l.rep)?.master).to.equal(`vfwbr${l.vni}`);
      expect(host.get(l.rep)?.mtu).to.equal(9000);
    }
    expect(host.get('vfwvx100')?.master).to.equal('vfwbr100');
    const fdb = (await runner.run({ argv: ['bridge', '-n', sim!.a.netns, 'fdb', 'show', 'dev', 'vfwvx100'] })).stdout;
    expect(fdb).to.match(/^00:00:00:00:00:00 dst 198\.18\.0\.2 /m);
  });

  it('gives the guest the MAC vfwire chose', async () => {
    const g1 = (await leaseOf(sim!.a, 'g1'))!;
    const guest = await links(`${sim!.opts.prefix}-g-g1`);
    expect(guest.get(g1.vfDev!)?.address).to.equal(g1.mac);
  });

  it('teardown leaves no lease, bridge, VXLAN, bridge member or guest netns', async () => {
    for (const g of GUESTS) await stopGuest(sim!.opts, g.name, runner);
    for (const h of [sim!.a, sim!.b]) await expectNoVfwireOn(h);
    expect((await listNetns(runner)).filter((n) => n.startsWith(`${sim!.opts.prefix}-g-`))).to.deep.equal([]);
  });
});
