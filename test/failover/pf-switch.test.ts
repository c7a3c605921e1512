import { expect } from 'chai';
import { parseConfig } from '../../src/config/config.js';
import { planUplinkMove, type UplinkPort } from '../../src/failover/pf-switch.js';
import { UNDERLAY, watchOnce } from '../../src/ipsec/watch.js';
import { loadConfig } from '../../src/config/config.js';
import { ExecRunner } from '../../src/exec/runner.js';
import { closeLogger, createLogger } from '../../src/log.js';
import { switchNetns, switchPort } from '../../src/sim/topology.js';
import { runChecks } from '../../src/doctor/checks.js';
import { downTestSim, links, runner, upTestSim, type TestSim } from '../helpers/sim.js';

const CFG = parseConfig(
  'underlay: { interface: p0, address: 198.18.0.1 }\npfs: [{ name: p0 }, { name: p1 }]\nfailover: { mode: pf-switch }\nipsec: { mode: static }\n',
);
const port = (name: string, carrier: boolean, holds: boolean): UplinkPort => ({ name, carrier, holds });

describe('failover pf-switch: when the underlay moves', () => {
  it('moves only when the holder lost its link and the other PF has one, adding before deleting', () => {
    const move = planUplinkMove(CFG, [port('p0', false, true), port('p1', true, false)]);
    expect(move?.commands.map((c) => c.argv.join(' '))).to.deep.equal([
      'ip addr add 198.18.0.1/24 dev p1',
      'ip addr del 198.18.0.1/24 dev p0',
    ]);
    expect(move?.announce.argv.join(' '), 'the gratuitous ARP, from the new port').to.equal(
      'arping -q -U -c 1 -I p1 198.18.0.1',
    );
    expect(planUplinkMove(CFG, [port('p0', true, true), port('p1', true, false)]), 'the holder has a link').to.equal(
      undefined,
    );
    expect(planUplinkMove(CFG, [port('p0', false, true), port('p1', false, false)]), 'neither has one').to.equal(
      undefined,
    );
    expect(planUplinkMove(CFG, [port('p0', true, false), port('p1', false, true)])?.to, 'back, after a move').to.equal(
      'p0',
    );
  });
});

describe('sim: failover pf-switch (two PFs through two switches, no bond)', function () {
  this.timeout(60_000);
  let sim: TestSim | undefined;

  before(async () => {
    sim = await upTestSim(1, { failover: 'pf-switch' });
  });
  after(async () => {
    await downTestSim(sim);
  });

  const watch = async () => {
    const cfg = await loadConfig(sim!.a.configPath);
    const log = createLogger(cfg.logDir, 'test');
    try {
      return await watchOnce(cfg, new ExecRunner(cfg.commandTimeoutMs), log);
    } finally {
      await closeLogger(log);
    }
  };
  // Which of host A's links holds the underlay address (`ip -br`: name, state, addresses).
  const holder = async () =>
    (await runner.run({ argv: ['ip', '-n', sim!.a.netns, '-br', '-4', 'addr', 'show'] })).stdout
      .split('\n')
      .filter((l) => l.includes(`${sim!.a.underlayIp}/`))
      .map((l) => l.split(/\s+/)[0]!.replace(/@.*/, ''));
  const doctorLine = async () =>
    (await runChecks({ cfg: await loadConfig(sim!.a.configPath), runner })).find(
      (r) => r.check === 'failover (pf-switch)',
    );

  it('host setup puts the underlay on PF0 and brings PF1 up without it; doctor says PF1 stands by', async () => {
    expect(await holder()).to.deep.equal([sim!.a.pf]);
    const l = await links(sim!.a.netns);
    expect(l.get(sim!.a.failover!.pf2)?.operstate).to.equal('UP');
    expect(await doctorLine()).to.deep.include({
      status: 'pass',
      detail: `the underlay is on ${sim!.a.pf}, ${sim!.a.failover!.pf2} stands by with a link`,
    });
  });

  it('PF0 loses its link at the switch: doctor fails it, one watch round moves the underlay to PF1, a second changes nothing', async () => {
    const sw = switchNetns(sim!.opts);
    await runner.run({ argv: ['ip', '-n', sw, 'link', 'set', 'dev', switchPort(sim!.a, 0), 'down'] });
    expect(await doctorLine(), 'doctor before the watch').to.deep.include({
      status: 'fail',
      fix: 'run vfwire ipsec watch (it moves the underlay to the PF with a link)',
    });
    // B holds A's address at PF0's MAC, as after traffic; nothing is sent to B during the round,
    // so only the gratuitous ARP can change it.
    const { a, b } = sim!;
    const macs = await links(a.netns);
    const bEntry = async () =>
      (await runner.run({ argv: ['ip', '-n', b.netns, 'neigh', 'show', a.underlayIp, 'dev', b.pf] })).stdout;
    await runner.run({
      argv: [
        'ip',
        '-n',
        b.netns,
        'neigh',
        'replace',
        a.underlayIp,
        'lladdr',
        macs.get(a.pf)!.address,
        'dev',
        b.pf,
        'nud',
        'reachable',
      ],
    });
    const [moved] = (await watch()).filter((f) => f.peer === UNDERLAY);
    expect(moved).to.deep.include({
      recovered: true,
      action: `moved the underlay ${a.underlayIp} to ${a.failover!.pf2}`,
    });
    expect(await holder()).to.deep.equal([a.failover!.pf2]);
    expect(await bEntry(), "B's entry for A's address, after the round").to.include(
      `lladdr ${macs.get(a.failover!.pf2)!.address} `,
    );
    // PF0 back: no preemption.
    await runner.run({ argv: ['ip', '-n', sw, 'link', 'set', 'dev', switchPort(sim!.a, 0), 'up'] });
    await new Promise((r) => setTimeout(r, 300));
    expect((await watch()).filter((f) => f.peer === UNDERLAY)).to.deep.equal([]);
    expect(await holder()).to.deep.equal([sim!.a.failover!.pf2]);
    expect(await doctorLine()).to.deep.include({
      status: 'pass',
      detail: `the underlay is on ${sim!.a.failover!.pf2}, ${sim!.a.pf} stands by with a link`,
    });
  });
});
