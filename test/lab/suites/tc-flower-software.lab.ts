// Kernel lab suite: the tc-flower overlay in software (tc_policy: skip_hw), the same rules vfwire
// renders for the NIC, run by the kernel's cls_flower, act_tunnel_key and act_mirred between the
// sim hosts (lab/run.sh KVER dist/test/lab/suites/tc-flower-software.lab.js). Two VMs of VNI 100 on
// host A and one on B reach each other (each first ping's ARP broadcast is replicated to the
// local member and to the peer), VNI 200 reaches none, and the last member's removal leaves no
// rule, no representor qdisc and no admission chain. gc takes the rules and qdisc of a lease the
// ledger lost, and nothing of the others.

import { expect } from 'chai';
import { startGuest, stopGuest, type GuestSpec } from '../../../src/sim/guest.js';
import { probeAll } from '../../../src/sim/reachability.js';
import { guestNetns } from '../../../src/sim/topology.js';
import { simHostSetup } from '../../../src/sim/sim-host.js';
import { nftCounters } from '../../helpers/nft.js';
import { admissionChains, downTestSim, editConfig, runner, upTestSim, type TestSim } from '../../helpers/sim.js';
import { requireLabVm } from '../lab-runner.js';
import { loadConfig } from '../../../src/config/config.js';
import { gcNoDomains } from '../../helpers/gc.js';
import { dropLeases } from '../../../src/ledger/record.js';
import { readLedger, withLedger } from '../../../src/ledger/store.js';

const GUESTS: GuestSpec[] = [
  { name: 't1', host: 'a', vni: 100, ip: '198.19.100.1/24', encrypt: 'off' },
  { name: 't2', host: 'a', vni: 100, ip: '198.19.100.2/24', encrypt: 'off' },
  { name: 't3', host: 'b', vni: 100, ip: '198.19.100.3/24', encrypt: 'off' },
  { name: 't4', host: 'b', vni: 200, ip: '198.19.100.4/24', encrypt: 'off' },
];

describe('lab: the tc-flower overlay in the kernel (tc_policy skip_hw)', function () {
  this.timeout(180_000);
  let sim: TestSim | undefined;
  const started: string[] = [];
  const perHost = (h: 'a' | 'b') => GUESTS.filter((g) => g.host === h);

  before(async () => {
    requireLabVm();
    // Host setup once, with the tc-flower config (its own function: a CLI start costs seconds under TCG).
    sim = await upTestSim(3, {}, false); // the third VF of host A: the lease gc finds lost
    await Promise.all(
      [sim.a, sim.b].map(async (h) => {
        editConfig(h.configPath, (doc) => {
          doc.overlay = 'tc-flower';
          doc.tc_policy = 'skip_hw';
          doc.command_timeout_ms = 60_000;
        });
        await simHostSetup(h.configPath);
      }),
    );
    const s = sim;
    await Promise.all(
      (['a', 'b'] as const).map(async (h) => {
        for (const g of perHost(h)) {
          started.push(g.name);
          await startGuest(s.opts, g, runner);
        }
      }),
    );
  });

  after(async () => {
    const s = sim;
    if (s)
      await Promise.all(
        (['a', 'b'] as const).map(async (h) => {
          for (const g of perHost(h))
            if (started.includes(g.name)) await stopGuest(s.opts, g.name, runner).catch(() => undefined);
        }),
      );
    await downTestSim(sim);
  });

  it('runs the rules in the kernel: every one is there, none in hardware', async () => {
    const shown = JSON.parse(
      (await runner.run({ argv: ['tc', '-n', sim!.a.netns, '-j', 'filter', 'show', 'dev', 'vfwvxlan', 'ingress'] }))
        .stdout,
    ) as { options?: { skip_hw?: boolean; in_hw?: boolean } }[];
    const rules = shown.filter((f) => f.options);
    expect(rules.length, 'decap rules on host A').to.be.greaterThan(0);
    expect(rules.every((f) => f.options!.skip_hw === true && f.options!.in_hw !== true)).to.equal(true);
  });

  it('VNI 100 reaches within and across hosts; VNI 200 reaches none', async () => {
    const probes = await probeAll(sim!.opts, GUESTS, runner);
    const wrong = probes.filter((p) => p.reached !== p.expected);
    expect(wrong, JSON.stringify(wrong)).to.deep.equal([]);
    expect(
      probes
        .filter((p) => p.reached)
        .map((p) => `${p.from}->${p.to}`)
        .sort(),
    ).to.deep.equal(['t1->t2', 't1->t3', 't2->t1', 't2->t3', 't3->t1', 't3->t2']);
  });

  it('one ARP broadcast reaches every other member of the VNI, on both hosts, and no other VNI', async () => {
    // Who has an address nobody holds: t1's kernel broadcasts the request and no reply stops it.
    const ghost = '198.19.100.77';
    const counters = await Promise.all(
      ['t2', 't3', 't4'].map((g) => nftCounters(guestNetns(sim!.opts, g), 'arp', [`arp daddr ip ${ghost}`])),
    );
    try {
      await runner
        .run({
          argv: ['ip', 'netns', 'exec', guestNetns(sim!.opts, 't1'), 'ping', '-n', '-q', '-c', '1', '-W', '3', ghost],
        })
        .catch(() => undefined);
      const seen = await Promise.all(counters.map(async (c) => (await c.read())[0]));
      expect(seen[0], 't2 (VNI 100, same host)').to.be.greaterThan(0);
      expect(seen[1], 't3 (VNI 100, other host)').to.be.greaterThan(0);
      expect(seen[2], 't4 (VNI 200)').to.equal(0);
    } finally {
      for (const c of counters) await c.remove();
    }
  });

  it("gc takes what a lost lease left: its VNI's decap rules and its representor's qdisc, nothing of the others", async () => {
    const s = sim!;
    const a = s.a;
    const rulesOnA = async () =>
      (
        JSON.parse(
          (await runner.run({ argv: ['tc', '-n', a.netns, '-j', 'filter', 'show', 'dev', 'vfwvxlan', 'ingress'] }))
            .stdout,
        ) as { options?: { handle: number }; pref: number }[]
      )
        .filter((f) => f.options)
        .map((f) => `${f.pref}/${f.options!.handle}`)
        .sort();
    const before = await rulesOnA();
    const lost: GuestSpec = { name: 't5', host: 'a', vni: 300, ip: '198.19.100.5/24', encrypt: 'off' };
    started.push(lost.name);
    await startGuest(s.opts, lost, runner);
    try {
      const cfg = await loadConfig(a.configPath);
      const lease = Object.values((await readLedger(cfg.stateDir)).leases).find((l) => l.vm === 't5')!;
      const withT5 = await rulesOnA();
      expect(withT5.length, "t5's decap rules").to.be.greaterThan(before.length);
      // The ledger loses t5's lease (a state directory restored from an old backup, say).
      await withLedger(cfg.stateDir, async (txn) => {
        dropLeases(txn.data, [lease.key]);
        await txn.save();
      });
      const gc = () => gcNoDomains(cfg, runner);
      const said = await gc();
      expect(said, said.join('\n')).to.include(
        `leftover ingress qdisc (and its rules) on representor ${lease.rep}, whose VF no lease holds`,
      );
      expect(said.filter((l) => l.startsWith('leftover tc rule vfwvxlan')).length, said.join('\n')).to.equal(
        withT5.length - before.length,
      );
      expect(said.at(-1)).to.match(/^released 0 lease\(s\), removed \d+ leftover\(s\)$/);
      // The other VNIs' rules are untouched, and they still carry traffic.
      expect(await rulesOnA()).to.deep.equal(before);
      const qdiscs = JSON.parse(
        (await runner.run({ argv: ['tc', '-n', a.netns, '-j', 'qdisc', 'show', 'dev', lease.rep] })).stdout,
      ) as { kind: string }[];
      expect(qdiscs.map((q) => q.kind)).to.not.include('ingress');
      expect(await gc()).to.deep.equal(['nothing to collect']);
      const probes = await probeAll(sim!.opts, GUESTS, runner);
      expect(probes.filter((p) => p.reached !== p.expected)).to.deep.equal([]);
    } finally {
      await stopGuest(s.opts, lost.name, runner);
      started.splice(started.indexOf(lost.name), 1);
    }
  });

  it("the last member's removal leaves no rule, no representor qdisc and no admission chain", async () => {
    const s = sim!;
    await Promise.all(
      (['a', 'b'] as const).map(async (h) => {
        for (const g of perHost(h)) await stopGuest(s.opts, g.name, runner);
      }),
    );
    for (const h of [s.a, s.b]) {
      const filters = JSON.parse(
        (await runner.run({ argv: ['tc', '-n', h.netns, '-j', 'filter', 'show', 'dev', 'vfwvxlan', 'ingress'] }))
          .stdout,
      ) as unknown[];
      expect(filters, `${h.id}: vfwvxlan rules`).to.deep.equal([]);
      const qdiscs = JSON.parse((await runner.run({ argv: ['tc', '-n', h.netns, '-j', 'qdisc', 'show'] })).stdout) as {
        kind: string;
        dev: string;
      }[];
      expect(
        qdiscs.filter((q) => q.kind === 'ingress' && q.dev !== 'vfwvxlan'),
        `${h.id}: representor qdiscs`,
      ).to.deep.equal([]);
      expect(await admissionChains(h.netns), `${h.id}: admission chains`).to.deep.equal([]);
    }
  });
});
