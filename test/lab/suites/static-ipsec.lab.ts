// Kernel lab suite: vfwire's static-key IPsec carries the overlay on a kernel with ESP and
// AES-GCM (lab/run.sh KVER dist/test/lab/suites/static-ipsec.lab.js). `ipsec.offload: none`,
// since no NIC is here: the kernel's own ESP. On 6.12 with bookworm-backports' ip the SAs take
// the new form (SA direction, output window 0); on 6.1 the lab notes' form: both are proven.

import { expect } from 'chai';
import { join } from 'node:path';
import { release } from 'node:os';
import { readLedger } from '../../../src/ledger/store.js';
import { policyDeleteArgv, saPackets } from '../../../src/ipsec/sa-kernel.js';
import { startGuest, stopGuest, type GuestSpec } from '../../../src/sim/guest.js';
import { guestNetns } from '../../../src/sim/topology.js';
import type { IpsecDeps } from '../../../src/ipsec/deps.js';
import { ipsecUp } from '../../../src/ipsec/static-sas.js';
import { watchOnce } from '../../../src/ipsec/watch.js';
import { leaseOf, runner, upTestSim, type TestSim } from '../../helpers/sim.js';
import { startCapture } from '../../helpers/capture.js';
import { nftCounters, vfwireDrops } from '../../helpers/nft.js';
import { requireLabVm } from '../lab-runner.js';
import { vfwire } from '../../helpers/cli.js';
import type { PeerEncryption } from '../../../src/ipsec/encryption-status.js';
import { configureStaticIpsec, tearDown, withIpsecDeps } from '../static-ipsec-setup.js';

const NEW_IP = '/opt/vfwire/iproute2/bin';

describe('lab: static IPsec between the sim hosts', function () {
  this.timeout(180_000);
  const GUESTS: GuestSpec[] = [
    { name: 'e1', host: 'a', vni: 100, ip: '198.19.100.1/24', encrypt: 'required' },
    { name: 'e2', host: 'b', vni: 100, ip: '198.19.100.2/24', encrypt: 'required' },
  ];
  let sim: TestSim | undefined;
  const started: string[] = [];
  const path = process.env.PATH;
  const withDeps = <T>(h: 'a' | 'b', fn: (d: IpsecDeps) => Promise<T>) => withIpsecDeps(sim!, h, fn);

  before(async () => {
    requireLabVm();
    // The new kernel with the new ip: the form with the SA direction. 6.1 keeps Debian 12's ip.
    if (!release().startsWith('6.1.')) process.env.PATH = `${NEW_IP}:${process.env.PATH}`;
    sim = await upTestSim(2);
    await configureStaticIpsec(sim);
  });

  after(async () => {
    await tearDown(sim, started);
    process.env.PATH = path;
  });

  it('a VM that requires encryption is refused while the SAs are down', async () => {
    const r = await startGuest(sim!.opts, GUESTS[0]!, runner).then(
      () => 'started',
      (e: Error) => e.message,
    );
    await stopGuest(sim!.opts, GUESTS[0]!.name, runner);
    expect(r).to.match(/encrypt: required, but no IPsec SAs to sim-b are up/);
  });

  it('ipsec up on both hosts installs the SAs in the form this kernel and ip accept', async () => {
    const ups = await Promise.all((['a', 'b'] as const).map((h) => withDeps(h, (d) => ipsecUp(d, {}))));
    for (const up of ups) expect(up.map((o) => o.result)).to.deep.equal(['up (epoch 1)']);
    const states = (await runner.run({ argv: ['ip', '-n', sim!.a.netns, 'xfrm', 'state'] })).stdout;
    // Three inbound (this epoch and two ahead), one outbound.
    expect(states.match(/^src /gm)).to.have.length(4);
    const out = states.split(/^(?=src )/m).find((b) => b.startsWith('src 198.18.0.1 dst 198.18.0.2'))!;
    // 6.12 with ip 6.15: the SA direction and no replay window; 6.1: the lab notes' window of 64
    // (with ESN, ip shows it in the "anti-replay esn context" as replay_window).
    if (release().startsWith('6.1.'))
      expect(out)
        .to.match(/replay_window 64\b/)
        .and.not.match(/dir out/);
    else
      expect(out)
        .to.match(/replay-window 0\b/)
        .and.match(/dir out/);
  });

  it('two guests on one VNI ping across hosts, also at the largest MTU with DF set, and each packet went through the SAs', async () => {
    await Promise.all(
      GUESTS.map(async (g) => {
        started.push(g.name);
        await startGuest(sim!.opts, g, runner);
      }),
    );
    const outA = (await readLedger(join(sim!.a.dir, 'state'))).ipsec!.peers['sim-b']!.sas.find((s) => s.dir === 'out')!;
    const inB = (await readLedger(join(sim!.b.dir, 'state'))).ipsec!.peers['sim-a']!.sas.find((s) => s.dir === 'in')!;
    expect(inB.spi, 'the peers agree on the SPI without talking').to.equal(outA.spi);
    // The guests' own chatter (neighbour discovery) may be in flight: compare the two counters only
    // when both have stood still for a second.
    const counters = async () => [
      await saPackets(runner, sim!.a.netns, outA),
      await saPackets(runner, sim!.b.netns, inB),
    ];
    const settled = async () => {
      for (let last = await counters(); ;) {
        await new Promise((r) => setTimeout(r, 1000));
        const now = await counters();
        if (now[0] === last[0] && now[1] === last[1]) return now;
        last = now;
      }
    };
    // B's underlay, captured: ESP, and no VXLAN.
    const wire = await startCapture(sim!.b.netns, sim!.b.pf);
    const before = await settled();
    const mtu = (await leaseOf(sim!.a, 'e1'))!.mtu;
    const ping = (size: number) =>
      runner.run({
        argv: [
          'ip',
          'netns',
          'exec',
          guestNetns(sim!.opts, 'e1'),
          'ping',
          '-n',
          '-q',
          '-c',
          '5',
          '-i',
          '0.2',
          '-W',
          '2',
          '-M',
          'do',
          '-s',
          String(size),
          '198.19.100.2',
        ],
      });
    await ping(56);
    await ping(mtu - 28);
    // One byte more does not fit with DF set: nothing gets through.
    expect(
      await ping(mtu - 27).then(
        () => 'reached',
        () => 'refused',
      ),
    ).to.equal('refused');
    const after = await settled();
    const sent = after[0]! - before[0]!;
    const received = after[1]! - before[1]!;
    expect(sent, "echo requests through A's outbound SA").to.be.at.least(10);
    expect(received, "and through B's inbound SA").to.equal(sent);
    const [esp, clear] = await wire.stop(['esp', 'udp port 4789']);
    expect(esp, "ESP captured on B's underlay").to.be.at.least(sent + received);
    expect(clear, "VXLAN captured on B's underlay").to.equal(0);
  });

  it('vfwire status says VNI 100 is encrypted to sim-b right now, with the packets through the SAs', async () => {
    const status = await vfwire(['--config', sim!.a.configPath, 'status', '--json']);
    expect(status.code, status.stderr).to.equal(0);
    const vni = (JSON.parse(status.stdout) as { vnis: { vni: number; encryption: PeerEncryption[] }[] }).vnis.find(
      (v) => v.vni === 100,
    )!;
    const pair = (await readLedger(join(sim!.a.dir, 'state'))).ipsec!.peers['sim-b']!;
    expect(vni.encryption).to.have.length(1);
    expect(vni.encryption[0]).to.include({
      peer: 'sim-b',
      address: sim!.b.underlayIp,
      state: 'encrypted',
      epoch: pair.epoch,
    });
    expect(vni.encryption[0]!.outPackets, 'out').to.be.at.least(10);
    expect(vni.encryption[0]!.inPackets, 'in').to.be.at.least(10);
    const text = await vfwire(['--config', sim!.a.configPath, 'status']);
    expect(text.stdout).to.match(new RegExp(`sim-b encrypted \\(epoch ${pair.epoch}, out \\d+ / in \\d+ packets\\)`));
  });

  it('an outbound policy that vanished (xfrm_dev_down flushes offloaded ones) drops VXLAN instead of sending it in clear; watch brings it back', async () => {
    const a = sim!.a;
    const b = sim!.b;
    // What reaches B without having been decrypted: VXLAN in clear.
    const clear = await nftCounters(b.netns, 'inet', ['udp dport 4789 meta secpath missing']);
    const ping = () =>
      runner
        .run({
          argv: [
            'ip',
            'netns',
            'exec',
            guestNetns(sim!.opts, 'e1'),
            'ping',
            '-n',
            '-q',
            '-c',
            '3',
            '-i',
            '0.3',
            '-W',
            '2',
            '198.19.100.2',
          ],
        })
        .then(
          () => 'reached',
          () => 'lost',
        );
    try {
      await runner.run({ argv: policyDeleteArgv(a.netns, { src: a.underlayIp, dst: b.underlayIp, dir: 'out' }) });
      expect(await ping(), "with A's outbound policy gone").to.equal('lost');
      expect(await clear.read(), 'VXLAN that reached B in clear').to.deep.equal([0]);
      const status = JSON.parse((await vfwire(['--config', a.configPath, 'status', '--json'])).stdout) as {
        vnis: { encryption: PeerEncryption[] }[];
      };
      expect(status.vnis[0]!.encryption[0], 'status with the policy gone').to.include({
        state: 'missing',
        epoch: 1,
        detail: 'policy out',
      });
      expect(await vfwireDrops(a.netns, 'inet', 'vni_100_out'), "dropped on A's way out").to.be.greaterThan(0);
      // The watch finds the policy lost and moves the pair to fresh SAs; B's watch follows.
      const [wa] = await withDeps('a', (d) => watchOnce(d.cfg, d.runner, d.log));
      expect(wa, JSON.stringify(wa)).to.deep.include({ peer: 'sim-b', lost: ['policy out'], recovered: true });
      expect(wa!.action).to.match(/^moved to epoch 2/);
      const wb = await withDeps('b', (d) => watchOnce(d.cfg, d.runner, d.log));
      expect(
        wb.every((f) => f.recovered),
        JSON.stringify(wb),
      ).to.equal(true);
      expect(await ping(), 'after the watch on both hosts').to.equal('reached');
    } finally {
      await clear.remove();
    }
  });

  it("all of A's SAs and policies flushed (mlx5 on a link down): nothing leaves in clear, watch moves the pair on, no key sends twice", async () => {
    const a = sim!.a;
    const b = sim!.b;
    const clear = await nftCounters(b.netns, 'inet', ['udp dport 4789 meta secpath missing']);
    const outSpi = async () =>
      /spi (0x[0-9a-f]+)/.exec(
        (
          await runner.run({
            argv: ['ip', '-n', a.netns, 'xfrm', 'state', 'list', 'src', a.underlayIp, 'dst', b.underlayIp],
          })
        ).stdout,
      )?.[1];
    const ping = () =>
      runner
        .run({
          argv: [
            'ip',
            'netns',
            'exec',
            guestNetns(sim!.opts, 'e1'),
            'ping',
            '-n',
            '-q',
            '-c',
            '3',
            '-i',
            '0.3',
            '-W',
            '2',
            '198.19.100.2',
          ],
        })
        .then(
          () => 'reached',
          () => 'lost',
        );
    // A round of the running watch after the last test's traffic: A hears B on epoch 2 (a host
    // moves at most two epochs past the last it heard its peer on).
    for (const h of ['a', 'b'] as const) await withDeps(h, (d) => watchOnce(d.cfg, d.runner, d.log));
    expect((await readLedger(join(a.dir, 'state'))).ipsec!.peers['sim-b']).to.include({ epoch: 2, confirmed: 2 });
    const spiBefore = await outSpi();
    const dropsBefore = await vfwireDrops(a.netns, 'inet', 'vni_100_out');
    try {
      for (const what of ['state', 'policy']) await runner.run({ argv: ['ip', '-n', a.netns, 'xfrm', what, 'flush'] });
      expect(await ping(), "with A's SAs and policies gone").to.equal('lost');
      expect(await clear.read(), 'VXLAN that reached B in clear').to.deep.equal([0]);
      expect(await vfwireDrops(a.netns, 'inet', 'vni_100_out'), "dropped on A's way out").to.be.greaterThan(
        dropsBefore,
      );
      const [wa] = await withDeps('a', (d) => watchOnce(d.cfg, d.runner, d.log));
      expect(wa, JSON.stringify(wa)).to.deep.include({ peer: 'sim-b', recovered: true });
      expect(wa!.action).to.match(/^moved to epoch 3/);
      const wb = await withDeps('b', (d) => watchOnce(d.cfg, d.runner, d.log));
      expect(
        wb.every((f) => f.recovered),
        JSON.stringify(wb),
      ).to.equal(true);
      expect(await ping(), 'after the watch on both hosts').to.equal('reached');
      expect(await clear.read(), 'VXLAN that reached B in clear, in all').to.deep.equal([0]);
    } finally {
      await clear.remove();
    }
    expect(await outSpi(), 'A sends on a new SA').to.not.equal(spiBefore);
    // Every outbound SA ever installed, as `<key fingerprint>:<spi>`: one per epoch, no key twice.
    for (const h of ['a', 'b'] as const) {
      const used = (await readLedger(join((h === 'a' ? a : b).dir, 'state'))).ipsec!.used;
      const keys = used.map((u) => u.split(':')[0]);
      expect(used, `${h}'s sending keys`).to.have.length(3);
      expect(new Set(keys).size, `${h}: a key sent with twice: ${used.join(' ')}`).to.equal(keys.length);
    }
  });

  it("plaintext VXLAN claiming to come from the peer never reaches a guest: it did not come through the peer's SA", async () => {
    const a = sim!.a;
    const b = sim!.b;
    // e2 goes, so host B's VNI 100 socket entry is free for the sender below.
    await stopGuest(sim!.opts, 'e2', runner);
    const e1 = guestNetns(sim!.opts, 'e1');
    const atE1 = await nftCounters(e1, 'arp', ['arp saddr ip 198.19.100.99']);
    // Host B's own address, sent in clear: an allow policy above vfwire's for one source port.
    const bypass = [
      'src',
      b.underlayIp,
      'dst',
      a.underlayIp,
      'proto',
      'udp',
      'sport',
      '40000',
      'dport',
      '4789',
      'dir',
      'out',
    ];
    await runner.run({
      argv: ['ip', '-n', b.netns, 'xfrm', 'policy', 'add', ...bypass, 'action', 'allow', 'priority', '1'],
    });
    try {
      await runner.run({
        argv: [
          'ip',
          '-n',
          b.netns,
          'link',
          'add',
          'vfwtsend',
          'type',
          'vxlan',
          'id',
          '100',
          'local',
          b.underlayIp,
          'remote',
          a.underlayIp,
          'dstport',
          '4789',
          'srcport',
          '40000',
          '40001',
          'dev',
          b.pf,
        ],
      });
      await runner.run({ argv: ['ip', '-n', b.netns, 'addr', 'add', '198.19.100.99/24', 'dev', 'vfwtsend'] });
      await runner.run({ argv: ['ip', '-n', b.netns, 'link', 'set', 'dev', 'vfwtsend', 'up'] });
      await runner
        .run({ argv: ['ip', 'netns', 'exec', b.netns, 'ping', '-c', '3', '-i', '0.3', '-W', '1', '198.19.100.1'] })
        .catch(() => undefined);
    } finally {
      await runner.run({ argv: ['ip', '-n', b.netns, 'link', 'del', 'vfwtsend'] }).catch(() => undefined);
      await runner.run({ argv: ['ip', '-n', b.netns, 'xfrm', 'policy', 'del', ...bypass] });
    }
    expect(await atE1.read(), 'ARP from the spoofed sender at the guest').to.deep.equal([0]);
    expect(
      await vfwireDrops(a.netns, 'inet', 'vni_100'),
      'they arrived, in clear, and were dropped by the admission',
    ).to.be.greaterThan(0);
  });
});
