// Kernel lab suite (runs inside a lab VM: lab/run.sh KVER dist/test/lab/suites/kernel-features.lab.js).
// Proves the tier itself: the VM runs the kernel it was asked for, that kernel loads what this
// machine's kernel lacks (ESP, xfrm, tc flower and its actions, bonding, Open vSwitch) from the
// shared /lib/modules, and vfwire's own simulated host pair works on it: two guests on VNI 100
// on different hosts reach each other over VXLAN, a guest on VNI 200 reaches neither.

import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { startGuest, stopGuest, type GuestSpec } from '../../../src/sim/guest.js';
import { probeAll } from '../../../src/sim/reachability.js';
import { downTestSim, runner, upTestSim, type TestSim } from '../../helpers/sim.js';
import { requireLabVm } from '../lab-runner.js';

const MODULES = ['esp4', 'xfrm_user', 'cls_flower', 'act_tunnel_key', 'act_mirred', 'bonding', 'vxlan', 'veth', 'openvswitch'];

describe('lab: kernel features', function () {
  // Everything is slower under TCG: a hook call takes seconds here.
  this.timeout(120_000);

  before(() => {
    requireLabVm();
  });

  it('runs on the kernel VFWIRE_LAB names, as root', () => {
    expect(release()).to.equal(process.env.VFWIRE_LAB);
    expect(process.getuid?.()).to.equal(0);
  });

  for (const m of MODULES) {
    it(`loads ${m} from /lib/modules/${release()}`, async () => {
      await runner.run({ argv: ['modprobe', m] });
      expect(existsSync(`/sys/module/${m}`), `/sys/module/${m}`).to.equal(true);
    });
  }

  describe('the simulated host pair on this kernel', () => {
    const GUESTS: GuestSpec[] = [
      { name: 'g1', host: 'a', vni: 100, ip: '198.19.100.1/24', encrypt: 'off' },
      { name: 'g2', host: 'b', vni: 100, ip: '198.19.100.2/24', encrypt: 'off' },
      { name: 'g3', host: 'b', vni: 200, ip: '198.19.100.3/24', encrypt: 'off' },
    ];
    let sim: TestSim | undefined;
    const started: string[] = [];

    // Each hook call is a Node process, seconds under TCG: the two hosts' guests start (and stop)
    // side by side, one host's in order (each host has its own ledger and lock).
    const perHost = (h: 'a' | 'b') => GUESTS.filter((g) => g.host === h);

    before(async () => {
      sim = await upTestSim(2);
      const s = sim;
      await Promise.all((['a', 'b'] as const).map(async (h) => {
        for (const g of perHost(h)) {
          started.push(g.name);
          await startGuest(s.opts, g, runner);
        }
      }));
    });

    after(async () => {
      const s = sim;
      if (s) {
        await Promise.all((['a', 'b'] as const).map(async (h) => {
          for (const g of perHost(h)) if (started.includes(g.name)) await stopGuest(s.opts, g.name, runner).catch(() => undefined);
        }));
      }
      await downTestSim(sim);
    });

    it('VNI 100 reaches across hosts; the VNI 200 guest reaches neither', async () => {
      const probes = await probeAll(sim!.opts, GUESTS, runner);
      const wrong = probes.filter((p) => p.reached !== p.expected);
      expect(wrong, JSON.stringify(wrong)).to.deep.equal([]);
      // Both outcomes happened: g1 <-> g2 reached, the four probes to or from g3 did not.
      expect(probes.filter((p) => p.reached).map((p) => `${p.from}->${p.to}`)).to.deep.equal(['g1->g2', 'g2->g1']);
      expect(probes.filter((p) => !p.reached)).to.have.length(4);
    });
  });
});
