// Integration: a VM's frames enter its VNI only with its lease's MAC (switchdev has no VF spoof
// check: the representor's nftables guard does it). Proven by traffic on the sim: a guest that
// takes another MAC reaches no one until it takes its own back.

import { expect } from 'chai';
import { startGuest, stopGuest, type GuestSpec } from '../../src/sim/guest.js';
import { ping } from '../../src/sim/reachability.js';
import { guestNetns } from '../../src/sim/topology.js';
import { vfwireDrops } from '../helpers/nft.js';
import { downTestSim, expectNoVfwireOn, leaseOf, runner, upTestSim, type TestSim } from '../helpers/sim.js';

const GUESTS: GuestSpec[] = [
  { name: 's1', host: 'a', vni: 100, ip: '198.19.100.1/24', encrypt: 'off' },
  { name: 's2', host: 'b', vni: 100, ip: '198.19.100.2/24', encrypt: 'off' },
];

describe('sim: representor anti-spoofing (bridge overlay)', function () {
  this.timeout(120_000);
  let sim: TestSim | undefined;

  before(async () => {
    sim = await upTestSim(2);
    for (const g of GUESTS) await startGuest(sim.opts, g, runner);
  });

  after(async () => {
    if (sim) for (const g of GUESTS) await stopGuest(sim.opts, g.name, runner).catch(() => undefined);
    await downTestSim(sim);
  });

  it('a guest that takes another MAC reaches no one; with its own it reaches its VNI again', async () => {
    const s1 = guestNetns(sim!.opts, 's1');
    const lease = (await leaseOf(sim!.a, 's1'))!;
    const setMac = async (mac: string) => {
      await runner.run({ argv: ['ip', '-n', s1, 'neigh', 'flush', 'all'] });
      await runner.run({ argv: ['ip', '-n', s1, 'link', 'set', 'dev', lease.vfDev!, 'address', mac] });
    };
    expect(await ping(s1, '198.19.100.2', runner), "with the lease's MAC").to.equal(true);
    await setMac('52:54:00:66:66:66');
    try {
      expect(await ping(s1, '198.19.100.2', runner), 'with a MAC of its own choosing').to.equal(false);
      expect(await vfwireDrops(sim!.a.netns, 'bridge', 'prerouting'), 'dropped at the representor').to.be.greaterThan(
        0,
      );
    } finally {
      await setMac(lease.mac);
    }
    expect(await ping(s1, '198.19.100.2', runner), 'its own MAC back').to.equal(true);
  });

  it("teardown removes the guard's elements with the leases", async () => {
    for (const g of GUESTS) await stopGuest(sim!.opts, g.name, runner);
    for (const h of [sim!.a, sim!.b]) {
      await expectNoVfwireOn(h);
      const sets = JSON.parse(
        (await runner.run({ argv: ['ip', 'netns', 'exec', h.netns, 'nft', '-j', 'list', 'table', 'bridge', 'vfwire'] }))
          .stdout,
      ) as { nftables: { set?: { name: string; elem?: unknown[] } }[] };
      expect(sets.nftables.flatMap((i) => (i.set ? [[i.set.name, i.set.elem ?? []]] : []))).to.deep.equal([
        ['reps', []],
        ['allowed', []],
      ]);
    }
  });
});
