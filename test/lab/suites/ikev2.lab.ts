// Kernel lab suite (lab/run.sh KVER dist/test/lab/suites/ikev2.lab.js): vfwire's IKEv2 mode
// between the sim hosts with two charons from Debian's strongSwan, on a kernel with ESP.
// Both CHILD_SAs come up INSTALLED with the fixed reqids vfwire's admission names, and two guests
// on one VNI ping across through them; B's underlay sees ESP and no VXLAN in clear. With
// ipsec.rekey_time at 10 s, strongSwan rekeys the children under a steady ping: new SPIs, the
// same reqids (so the admission keeps taking the traffic), and at most a few packets lost.

import { expect } from 'chai';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../../src/config/config.js';
import { ExecRunner } from '../../../src/exec/runner.js';
import { checkIkeChildren, ikev2Down, ikev2Up } from '../../../src/ipsec/ikev2.js';
import { inboundReqid, outboundReqid } from '../../../src/ipsec/sa-ids.js';
import { closeLogger, createLogger } from '../../../src/log.js';
import { startGuest, stopGuest, type GuestSpec } from '../../../src/sim/guest.js';
import { guestNetns } from '../../../src/sim/topology.js';
import { waitFor } from '../../../src/wait.js';
import { startCharon, stopCharon, type Charon } from '../../helpers/charon.js';
import { downTestSim, editConfig, runner, upTestSim, type TestSim } from '../../helpers/sim.js';
import { nftCounters } from '../../helpers/nft.js';
import { labReport, requireLabVm } from '../lab-runner.js';

const GUESTS: GuestSpec[] = [
  { name: 'k1', host: 'a', vni: 100, ip: '198.19.100.1/24', encrypt: 'required' },
  { name: 'k2', host: 'b', vni: 100, ip: '198.19.100.2/24', encrypt: 'required' },
];

const REKEY_S = 10;

/** The SAs between A and B in A's netns: SPI and reqid of each, by direction. */
async function sasOnA(sim: TestSim): Promise<{ spi: string; reqid: number; out: boolean }[]> {
  const states = (await runner.run({ argv: ['ip', '-n', sim.a.netns, 'xfrm', 'state'] })).stdout;
  return states
    .split(/^(?=src )/m)
    .filter((b) => b.startsWith('src '))
    .map((b) => ({
      spi: /spi (0x[0-9a-f]+)/.exec(b)?.[1] ?? '?',
      reqid: Number(/reqid (\d+)/.exec(b)?.[1]),
      out: b.startsWith(`src ${sim.a.underlayIp} `),
    }));
}

describe('lab: IKEv2 between the sim hosts (two charons)', function () {
  this.timeout(240_000);
  let sim: TestSim | undefined;
  const charons: Charon[] = [];
  const started: string[] = [];
  const dir = (h: 'a' | 'b') => join(sim!.opts.dir, h);
  const host = (h: 'a' | 'b') => (h === 'a' ? sim!.a : sim!.b);
  const withCfg = async <T>(h: 'a' | 'b', fn: (cfg: Config) => Promise<T>): Promise<T> =>
    fn(await loadConfig(host(h).configPath));
  const deps = async (h: 'a' | 'b') => {
    const cfg = await loadConfig(host(h).configPath);
    return { cfg, runner: new ExecRunner(cfg.commandTimeoutMs), log: createLogger(cfg.logDir, 'lab') };
  };

  before(async () => {
    requireLabVm();
    sim = await upTestSim(2);
    const psk = randomBytes(48).toString('base64') + '\n';
    // Both charons side by side (each starts in seconds under TCG).
    await Promise.all(
      (['a', 'b'] as const).map(async (h) => {
        const d = dir(h);
        mkdirSync(join(d, 'keys'), { recursive: true, mode: 0o700 });
        writeFileSync(join(d, 'keys', `${h === 'a' ? 'sim-b' : 'sim-a'}.psk`), psk, { mode: 0o600 });
        editConfig(host(h).configPath, (doc) => {
          doc.ipsec = {
            mode: 'ikev2',
            offload: 'none',
            key_dir: join(d, 'keys'),
            swanctl_dir: join(d, 'swanctl'),
            vici_uri: `unix://${d}/charon.vici`,
            rekey_time: REKEY_S,
          };
          doc.command_timeout_ms = 60_000;
        });
        charons.push(
          await startCharon({
            name: h,
            netns: host(h).netns,
            confPath: join(d, 'strongswan.conf'),
            strongswanConf: `charon {\n  load_modular = no\n  load = random nonce openssl kdf pem pkcs1 x509 pubkey kernel-netlink socket-default vici\n  plugins { vici { socket = unix://${d}/charon.vici } }\n}\n`,
            swanctlDir: join(d, 'swanctl'),
            socket: join(d, 'charon.vici'),
            env: { STRONGSWAN_CONF: join(d, 'strongswan.conf') },
          }),
        );
      }),
    );
  });

  after(async () => {
    const s = sim;
    if (s)
      for (const g of GUESTS)
        if (started.includes(g.name)) await stopGuest(s.opts, g.name, runner).catch(() => undefined);
    if (s)
      for (const h of ['a', 'b'] as const) {
        const d = await deps(h).catch(() => undefined);
        if (d)
          await ikev2Down(d, {})
            .catch(() => undefined)
            .finally(() => closeLogger(d.log));
      }
    for (const c of charons) await stopCharon(c);
    await downTestSim(sim);
  });

  it('ipsec up on both hosts: both CHILD_SAs INSTALLED, with the reqids the admission names', async () => {
    for (const h of ['b', 'a'] as const) {
      const d = await deps(h);
      try {
        expect((await ikev2Up(d, {})).map((o) => o.result)).to.deep.equal(['up']);
      } finally {
        await closeLogger(d.log);
      }
    }
    for (const h of ['a', 'b'] as const) {
      await waitFor(
        `${h}'s CHILD_SAs`,
        () =>
          withCfg(h, async (cfg) => ((await checkIkeChildren(cfg, runner, cfg.peers)).length === 0 ? true : undefined)),
        90_000,
        1000,
      );
    }
    const states = (await runner.run({ argv: ['ip', '-n', sim!.a.netns, 'xfrm', 'state'] })).stdout;
    const fromB = states
      .split(/^(?=src )/m)
      .filter((b) => b.startsWith(`src ${sim!.b.underlayIp} dst ${sim!.a.underlayIp}`));
    expect(
      fromB.map((b) => Number(/reqid (\d+)/.exec(b)?.[1])),
      states,
    ).to.include(inboundReqid(sim!.a.underlayIp, sim!.b.underlayIp));
  });

  it("two guests that require encryption ping across through the CHILD_SAs; B's underlay sees ESP, no VXLAN in clear", async () => {
    const wire = await nftCounters(sim!.b.netns, 'inet', ['meta l4proto esp', 'udp dport 4789 meta secpath missing']);
    for (const g of GUESTS) {
      started.push(g.name);
      await startGuest(sim!.opts, g, runner);
    }
    await runner.run({
      argv: [
        'ip',
        'netns',
        'exec',
        guestNetns(sim!.opts, 'k1'),
        'ping',
        '-n',
        '-q',
        '-c',
        '5',
        '-i',
        '0.2',
        '-W',
        '2',
        '198.19.100.2',
      ],
    });
    const [esp, clear] = await wire.read();
    await wire.remove();
    expect(esp, "ESP on B's underlay").to.be.at.least(5);
    expect(clear, "VXLAN in clear on B's underlay").to.equal(0);
  });

  it(`a rekey under rekey_time ${REKEY_S} s: new SPIs with the same reqids, at most a few packets lost (printed)`, async () => {
    const before = await sasOnA(sim!);
    const wire = await nftCounters(sim!.b.netns, 'inet', ['udp dport 4789 meta secpath missing']);
    // Each child is rekeyed at most rekey_time after it was installed, before now: a ping well past
    // rekey_time from now sees every child rekeyed at least once.
    const seconds = REKEY_S + 8;
    const { stdout } = await execa(
      'ip',
      [
        'netns',
        'exec',
        guestNetns(sim!.opts, 'k1'),
        'ping',
        '-n',
        '-q',
        '-i',
        '0.1',
        '-w',
        String(seconds),
        '-W',
        '1',
        '198.19.100.2',
      ],
      { reject: false, timeout: (seconds + 30) * 1000 },
    );
    const sent = Number(/(\d+) packets transmitted/.exec(stdout)?.[1] ?? 0);
    const received = Number(/(\d+) received/.exec(stdout)?.[1] ?? 0);
    const after = await sasOnA(sim!);
    const [clear] = await wire.read();
    await wire.remove();
    const fresh = after.filter((s) => !before.some((b) => b.spi === s.spi));
    labReport(
      'ikev2',
      `rekey (rekey_time ${REKEY_S} s): ${fresh.length} new SAs on A in ${seconds} s of ping every 100 ms, ${sent - received} of ${sent} lost (${process.env.VFWIRE_LAB}, TCG)`,
    );
    expect(
      fresh.filter((s) => s.out).length,
      `a new outbound SA on A (before: ${JSON.stringify(before)}, after: ${JSON.stringify(after)})`,
    ).to.be.at.least(1);
    expect(fresh.filter((s) => !s.out).length, 'a new inbound SA on A').to.be.at.least(1);
    // A CHILD_SA is a pair of SAs: each child's reqid is on one SA each way.
    const fixed = [
      inboundReqid(sim!.a.underlayIp, sim!.b.underlayIp),
      outboundReqid(sim!.a.underlayIp, sim!.b.underlayIp),
    ];
    expect(
      fresh.map((s) => s.reqid),
      "the new SAs keep the children's fixed reqids",
    ).to.satisfy((r: number[]) => r.every((x) => fixed.includes(x)));
    expect(
      fresh.filter((s) => !s.out).map((s) => s.reqid),
      "a new SA for the peer's VXLAN, under the reqid the admission names",
    ).to.include(fixed[0]);
    expect(sent, 'pings sent').to.be.at.least(seconds * 5);
    expect(sent - received, 'pings lost across the rekeys').to.be.at.most(5);
    expect(clear, "VXLAN in clear on B's underlay").to.equal(0);
  });
});
