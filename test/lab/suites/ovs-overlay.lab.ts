// Kernel lab suite: `overlay: ovs` end to end on the sim hosts (lab/run.sh KVER
// dist/test/lab/suites/ovs-overlay.lab.js). Host setup starts each host's ovsdb-server and
// ovs-vswitchd itself (no systemd in a lab VM; ovs-vswitchd in the host's netns, its kernel
// datapath there), and makes the secure bridge and its flow-based VXLAN port; the guests start
// and stop through vfwire's own prepare and release. Two guests of VNI 100 on A, one on B, one of
// VNI 200 on B, all in one subnet: VNI 100 reaches within and across hosts, VNI 200 none, one ARP
// broadcast reaches every other member of VNI 100 and not VNI 200. Then the same with static
// IPsec on: every packet between the hosts goes through the SAs, none as VXLAN in clear.

import { expect } from 'chai';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/config.js';
import { saPackets } from '../../../src/ipsec/sa-kernel.js';
import { ipsecUp } from '../../../src/ipsec/static-sas.js';
import { readLedger } from '../../../src/ledger/store.js';
import { countDatapathFlows, ovsChecks } from '../../../src/overlay/ovs/checks.js';
import { vswitchdControl } from '../../../src/overlay/ovs/daemons.js';
import { parseCookies } from '../../../src/overlay/ovs/leftovers.js';
import { HOOK_SCRIPT, pinnedHookEnv } from '../../../src/sim/hook-call.js';
import { startGuest, stopGuest, type GuestSpec } from '../../../src/sim/guest.js';
import { probeAll } from '../../../src/sim/reachability.js';
import { simHostSetup } from '../../../src/sim/sim-host.js';
import { guestNetns, type SimHost } from '../../../src/sim/topology.js';
import { waitFor } from '../../../src/wait.js';
import { startCapture } from '../../helpers/capture.js';
import { gcNoDomains } from '../../helpers/gc.js';
import { nftCounters } from '../../helpers/nft.js';
import {
  admissionChains,
  configVariant,
  downTestSim,
  editConfig,
  leasesOn,
  runner,
  upTestSim,
  type TestSim,
} from '../../helpers/sim.js';
import { domainXml, runHook } from '../../helpers/hook.js';
import { labKernelAtLeast, requireLabVm } from '../lab-runner.js';
import { configureStaticIpsec, tearDown, withIpsecDeps } from '../static-ipsec-setup.js';

const uptime = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);

/** The sim hosts with `overlay: ovs` (each host's OVS in its own directory), host setup run. */
async function ovsSim(ipsec: boolean): Promise<TestSim> {
  // OVS 3.1.0 started in a boot's first ~10 s runs with no upcall handlers (ovs-daemons.ts).
  while (uptime() < 12) await new Promise((r) => setTimeout(r, 500));
  const sim = await upTestSim(3, { overlay: 'ovs' }, false);
  try {
    if (ipsec) await configureStaticIpsec(sim);
    for (const h of [sim.a, sim.b])
      editConfig(h.configPath, (doc) => {
        doc.command_timeout_ms = 60_000;
      });
    await Promise.all([sim.a, sim.b].map((h) => simHostSetup(h.configPath)));
    return sim;
  } catch (err) {
    await downTestSim(sim);
    throw err;
  }
}

const ovsctl = (h: SimHost, ...args: string[]) =>
  runner.run({ argv: ['ovs-vsctl', `--db=unix:${join(h.dir, 'ovs', 'db.sock')}`, ...args] });
const flows = async (h: SimHost) =>
  (
    await runner.run({
      argv: ['ovs-ofctl', '-O', 'OpenFlow14', 'dump-flows', `unix:${join(h.dir, 'ovs', 'vfwovs.mgmt')}`],
    })
  ).stdout;

describe('lab: the OVS overlay between the sim hosts', function () {
  this.timeout(300_000);
  const GUESTS: GuestSpec[] = [
    { name: 'o1', host: 'a', vni: 100, ip: '198.19.100.1/24', encrypt: 'off' },
    { name: 'o2', host: 'a', vni: 100, ip: '198.19.100.2/24', encrypt: 'off' },
    { name: 'o3', host: 'b', vni: 100, ip: '198.19.100.3/24', encrypt: 'off' },
    { name: 'o4', host: 'b', vni: 200, ip: '198.19.100.4/24', encrypt: 'off' },
  ];
  let sim: TestSim | undefined;
  const started: string[] = [];

  before(async () => {
    requireLabVm();
    sim = await ovsSim(false);
    for (const g of GUESTS) {
      started.push(g.name);
      await startGuest(sim.opts, g, runner);
    }
  });

  after(async () => {
    const s = sim;
    if (s) for (const g of started) await stopGuest(s.opts, g, runner).catch(() => undefined);
    await downTestSim(sim);
  });

  it('host setup started OVS in each host netns: a secure bridge with the flow-based VXLAN port, and doctor agrees', async () => {
    for (const h of [sim!.a, sim!.b]) {
      expect((await ovsctl(h, 'get-fail-mode', 'vfwovs')).stdout.trim()).to.equal('secure');
      const ports = (await ovsctl(h, 'list-ports', 'vfwovs')).stdout.trim().split('\n');
      expect(ports).to.include('vfwtun');
      // The datapath's VXLAN device, in the host's netns (ovs-vswitchd's), not the root one.
      const links = (await runner.run({ argv: ['ip', '-n', h.netns, '-br', 'link'] })).stdout;
      expect(links).to.match(/^vxlan_sys_4789\b/m);
      const checks = await ovsChecks(await loadConfig(h.configPath), runner, await readLedger(join(h.dir, 'state')));
      const bad = checks.filter((c) => c.status === 'fail');
      expect(bad, JSON.stringify(bad)).to.deep.equal([]);
    }
  });

  it('VNI 100 reaches within and across hosts; VNI 200 reaches none', async () => {
    const probes = await probeAll(sim!.opts, GUESTS, runner);
    const wrong = probes.filter((p) => p.reached !== p.expected);
    expect(wrong, `${JSON.stringify(wrong)}\n${await flows(sim!.a)}`).to.deep.equal([]);
    expect(
      probes
        .filter((p) => p.reached)
        .map((p) => `${p.from}->${p.to}`)
        .sort(),
    ).to.deep.equal(['o1->o2', 'o1->o3', 'o2->o1', 'o2->o3', 'o3->o1', 'o3->o2']);
  });

  it('one ARP broadcast reaches every other member of the VNI, on both hosts, and no other VNI', async () => {
    const ghost = '198.19.100.77';
    const counters = await Promise.all(
      ['o2', 'o3', 'o4'].map((g) => nftCounters(guestNetns(sim!.opts, g), 'arp', [`arp daddr ip ${ghost}`])),
    );
    try {
      await runner
        .run({
          argv: ['ip', 'netns', 'exec', guestNetns(sim!.opts, 'o1'), 'ping', '-n', '-q', '-c', '1', '-W', '3', ghost],
        })
        .catch(() => undefined);
      const seen = await Promise.all(counters.map(async (c) => (await c.read())[0]));
      expect(seen[0], 'o2 (VNI 100, same host)').to.be.greaterThan(0);
      expect(seen[1], 'o3 (VNI 100, other host)').to.be.greaterThan(0);
      expect(seen[2], 'o4 (VNI 200)').to.equal(0);
      // The kernel datapath's ARP flows as doctor's offload check counts them (apart: mlx5 takes none).
      const ctl = await vswitchdControl(join(sim!.a.dir, 'ovs'));
      const dump = await runner.run({ argv: ['ovs-appctl', '-t', ctl, 'dpctl/dump-flows', 'type=non-offloaded'] });
      const counted = countDatapathFlows(dump.stdout);
      expect(counted.arp, dump.stdout).to.be.greaterThan(0);
    } finally {
      for (const c of counters) await c.remove();
    }
  });

  it("a member's start failing at any of its steps leaves the VNI's ports and rules as they were; the next one succeeds", async () => {
    const a = sim!.a;
    const xml = domainXml('o5', '00000000-0000-4000-8000-0000000000f5', ['vni="100" encrypt="off"']);
    const ports = async () => (await ovsctl(a, 'list-ports', 'vfwovs')).stdout.trim().split('\n').sort();
    const rules = async () => (await flows(a)).split('\n').filter((l) => l.includes('cookie=0x64,')).length;
    const before = { ports: await ports(), rules: await rules(), leases: (await leasesOn(a)).length };
    // Under fault injection command N is step N: fail each in turn until the start gets through.
    let k = 0;
    for (; k < 20; k++) {
      const run = await runHook(a.configPath, 'o5', 'prepare', 'begin', xml, { VFWIRE_TEST_FAIL_STEP: String(k) });
      if (run.code === 0) break;
      expect(run.stderr, `step ${k}`).to.match(/injected failure at command/);
      expect(await ports(), `ports after a failure at step ${k}`).to.deep.equal(before.ports);
      expect(await rules(), `VNI 100's rules after a failure at step ${k}`).to.equal(before.rules);
      expect((await leasesOn(a)).length, `leases after a failure at step ${k}`).to.equal(before.leases);
    }
    expect(k, 'steps that could fail').to.be.within(3, 19);
    expect((await ports()).length).to.equal(before.ports.length + 1);
    // A member brings three admission rules and its unicast rule (flows.ts).
    expect(await rules()).to.equal(before.rules + 4);
    const released = await runHook(a.configPath, 'o5', 'release', 'end', xml);
    expect(released.code, released.stderr).to.equal(0);
    expect(await ports()).to.deep.equal(before.ports);
    expect(await rules()).to.equal(before.rules);
  });

  it("a start killed at each of its steps, then libvirt's release: ports, rules, admission chains and leases as before; gc takes what a lost ledger left", async function () {
    // The kernel does not enter into it (the rollback at each step above runs on every kernel).
    if (!labKernelAtLeast(6, 12)) this.skip();
    const a = sim!.a;
    // The dead hook's lock goes stale in 2 s with this config, not the default 10 (lock_stale_ms).
    const config = configVariant(a.configPath, 'stale-2s.yaml', { lock_stale_ms: 2000 });
    const cfg = await loadConfig(config);
    const xml = domainXml('o6', '00000000-0000-4000-8000-0000000000f6', ['vni="300" encrypt="off"']);
    const ports = async () => (await ovsctl(a, 'list-ports', 'vfwovs')).stdout.trim().split('\n').sort();
    const cookies = async () => parseCookies(await flows(a));
    const state = async () => ({
      ports: await ports(),
      cookies: await cookies(),
      chains: await admissionChains(a.netns),
      leases: (await leasesOn(a)).map((l) => l.key).sort(),
    });
    const before = await state();
    expect(before.cookies, 'VNI 300 has no rules yet').to.not.include(300);
    const gc = () => gcNoDomains(cfg, runner);
    let k = 0;
    for (; k < 20; k++) {
      const hook = execa(HOOK_SCRIPT, ['o6', 'prepare', 'begin', '-'], {
        input: xml,
        env: { ...(await pinnedHookEnv(config)), VFWIRE_TEST_HANG_STEP: String(k) },
        reject: false,
        timeout: 120_000,
      });
      let hung = false;
      hook.stderr!.on('data', (d: Buffer) => {
        if (d.toString().includes(`injected hang before command ${k}`)) hung = true;
      });
      let done = false;
      void hook.then(() => (done = true));
      await waitFor(`the start to hang at step ${k}, or end`, async () => (hung || done ? true : undefined), 60_000);
      if (done) {
        // Fewer steps than k: the start went through; its release puts everything back.
        expect((await hook).exitCode, (await hook).stderr).to.equal(0);
        const released = await runHook(config, 'o6', 'release', 'end', xml);
        expect(released.code, released.stderr).to.equal(0);
        break;
      }
      // The shim runs node in a pipeline child: kill that process, as a crash would.
      await execa('pkill', ['-KILL', '-f', 'hook-main.js -- o6 prepare']);
      await hook;
      expect(
        (await leasesOn(a)).map((l) => l.vm),
        'the lease recorded before any step',
      ).to.include('o6');
      // libvirt calls release once a start's prepare failed; the dead hook's lock goes stale first.
      const released = await runHook(config, 'o6', 'release', 'end', xml);
      expect(released.code, released.stderr).to.equal(0);
      expect(await state(), `after a kill at step ${k} and the release`).to.deep.equal(before);
    }
    expect(k, 'steps a start could be killed at').to.be.within(3, 19);
    expect(await state()).to.deep.equal(before);

    // A lost ledger: a port and rules vfwire made that no lease accounts for any more.
    await ovsctl(a, 'add-port', 'vfwovs', 'vfwlost0', '--', 'set', 'Interface', 'vfwlost0', 'type=internal');
    await runner.run({
      argv: [
        'ovs-ofctl',
        '-O',
        'OpenFlow14',
        'add-flow',
        `unix:${join(a.dir, 'ovs', 'vfwovs.mgmt')}`,
        'cookie=0x1f4,table=0,priority=100,in_port=vfwlost0,actions=drop',
      ],
    });
    // Sim guests' leases are not libvirt's (netns): gc frees none of them, only what no lease accounts for.
    const said = await gc();
    expect(said).to.include.members([
      'leftover vfwlost0: port of vfwovs without a lease',
      'leftover rules of vfwovs under cookie 0x1f4 (VNI 500): not in the ledger',
    ]);
    expect(await state()).to.deep.equal(before);
    expect(await gc()).to.deep.equal(['nothing to collect']);
  });

  it("the last members' release leaves no rule of theirs, no representor port and no admission chain", async () => {
    const s = sim!;
    for (const g of [...started]) {
      await stopGuest(s.opts, g, runner);
      started.splice(started.indexOf(g), 1);
    }
    for (const h of [s.a, s.b]) {
      const left = await flows(h);
      expect(left, `${h.id}: rules`).to.not.match(/cookie=0x(64|c8)\b/);
      expect((await ovsctl(h, 'list-ports', 'vfwovs')).stdout.trim(), `${h.id}: ports`).to.equal('vfwtun');
      expect(await admissionChains(h.netns), `${h.id}: admission chains`).to.deep.equal([]);
    }
  });
});

describe('lab: the OVS overlay with static IPsec', function () {
  this.timeout(300_000);
  const GUESTS: GuestSpec[] = [
    { name: 'p1', host: 'a', vni: 100, ip: '198.19.100.1/24', encrypt: 'required' },
    { name: 'p2', host: 'b', vni: 100, ip: '198.19.100.2/24', encrypt: 'required' },
  ];
  let sim: TestSim | undefined;
  const started: string[] = [];

  before(async () => {
    requireLabVm();
    sim = await ovsSim(true);
  });

  after(() => tearDown(sim, started));

  it('guests that require encryption start once the SAs are up, and every packet between them goes through the SAs', async () => {
    const s = sim!;
    await Promise.all((['a', 'b'] as const).map((h) => withIpsecDeps(s, h, (d) => ipsecUp(d, {}))));
    for (const g of GUESTS) {
      started.push(g.name);
      await startGuest(s.opts, g, runner);
    }
    const outA = (await readLedger(join(s.a.dir, 'state'))).ipsec!.peers['sim-b']!.sas.find((x) => x.dir === 'out')!;
    const inB = (await readLedger(join(s.b.dir, 'state'))).ipsec!.peers['sim-a']!.sas.find((x) => x.dir === 'in')!;
    const packets = async (netns: string, sa: typeof outA) => {
      const n = await saPackets(runner, netns, sa);
      if (n === undefined) throw new Error(`no SA ${sa.spi} in ${netns}`);
      return n;
    };
    const wire = await startCapture(s.b.netns, s.b.pf);
    const sent0 = await packets(s.a.netns, outA);
    const got0 = await packets(s.b.netns, inB);
    await runner.run({
      argv: [
        'ip',
        'netns',
        'exec',
        guestNetns(s.opts, 'p1'),
        'ping',
        '-n',
        '-q',
        '-c',
        '10',
        '-i',
        '0.2',
        '-W',
        '2',
        '198.19.100.2',
      ],
    });
    const sent = (await packets(s.a.netns, outA)) - sent0;
    const got = (await packets(s.b.netns, inB)) - got0;
    expect(sent, "A's outbound SA").to.be.at.least(10);
    expect(got, "B's inbound SA").to.be.at.least(10);
    const [esp, clear] = await wire.stop(['esp', 'udp port 4789']);
    expect(esp, "ESP on B's underlay").to.be.at.least(20);
    expect(clear, "VXLAN in clear on B's underlay").to.equal(0);
  });
});
