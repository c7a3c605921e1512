// Integration: underlay admission on the sim. VXLAN that claims a VNI reaches that VNI's guests
// only from a peer configured for the VNI; from any other underlay address, or from a peer the
// config does not give that VNI, it is dropped before the VXLAN device sees it. With IPsec on,
// VXLAN without an SA is dropped both ways (the lab proves the SA path itself).
//
// A "sender" is a VXLAN device the test makes in host B's netns with a chosen local address;
// it floods an ARP request for guest g1 on host A. g1's netns counts what arrives from the
// sender's inner address (an arp-family counter), so "reached the tenant" is read at the tenant.

import { expect } from 'chai';
import { startGuest, stopGuest, type GuestSpec } from '../../src/sim/guest.js';
import { guestNetns } from '../../src/sim/topology.js';
import { nftCounters, vfwireDrops, type Counters } from '../helpers/nft.js';
import {
  admissionChains,
  downTestSim,
  editConfig,
  expectNoVfwireOn,
  runner,
  upTestSim,
  type TestSim,
} from '../helpers/sim.js';

const G1: GuestSpec = { name: 'g1', host: 'a', vni: 100, ip: '198.19.100.1/24', encrypt: 'off' };
const SENDER_INNER = '198.19.100.99';
const ROGUE_UNDERLAY = '198.18.0.9';

describe('sim: underlay admission', function () {
  this.timeout(120_000);
  let sim: TestSim | undefined;

  before(async () => {
    sim = await upTestSim(2);
    // A second underlay address on host B, for a sender that is no configured peer.
    await runner.run({ argv: ['ip', '-n', sim.b.netns, 'addr', 'add', `${ROGUE_UNDERLAY}/32`, 'dev', sim.b.pf] });
  });

  afterEach(async () => {
    if (sim) await stopGuest(sim.opts, G1.name, runner).catch(() => undefined);
  });

  after(() => downTestSim(sim));

  /** ARP requests from SENDER_INNER that reached g1, after the sender at `local` tried. */
  async function arrivals(local: string): Promise<number> {
    const b = sim!.b.netns;
    await runner.run({
      argv: [
        'ip',
        '-n',
        b,
        'link',
        'add',
        'vfwtsend',
        'type',
        'vxlan',
        'id',
        '100',
        'local',
        local,
        'remote',
        sim!.a.underlayIp,
        'dstport',
        '4789',
        'dev',
        sim!.b.pf,
      ],
    });
    try {
      await runner.run({ argv: ['ip', '-n', b, 'addr', 'add', `${SENDER_INNER}/24`, 'dev', 'vfwtsend'] });
      await runner.run({ argv: ['ip', '-n', b, 'link', 'set', 'dev', 'vfwtsend', 'up'] });
      await runner
        .run({ argv: ['ip', 'netns', 'exec', b, 'ping', '-c', '3', '-i', '0.2', '-W', '1', '198.19.100.1'] })
        .catch(() => undefined);
    } finally {
      await runner.run({ argv: ['ip', '-n', b, 'link', 'del', 'vfwtsend'] });
    }
    const [arp] = await atG1!.read();
    return arp!;
  }

  let atG1: Counters | undefined;
  async function startG1(): Promise<void> {
    await startGuest(sim!.opts, G1, runner);
    atG1 = await nftCounters(guestNetns(sim!.opts, 'g1'), 'arp', [`arp saddr ip ${SENDER_INNER}`]);
  }

  it("takes a VNI's VXLAN from its configured peer, and drops it from any other underlay address", async () => {
    await startG1();
    expect(await admissionChains(sim!.a.netns)).to.deep.equal(['vni_100', 'vni_100_out']);
    const fromPeer = await arrivals(sim!.b.underlayIp);
    expect(fromPeer, 'ARP from the configured peer reaches the guest (the probe works)').to.be.greaterThan(0);
    // The counter adds up: nothing more arrived.
    expect(await arrivals(ROGUE_UNDERLAY), 'ARP from a non-peer address').to.equal(fromPeer);
    await stopGuest(sim!.opts, G1.name, runner);
    await expectNoVfwireOn(sim!.a);
  });

  it("drops a VNI's VXLAN from a peer the config does not give that VNI", async () => {
    editConfig(sim!.a.configPath, (doc) => {
      (doc.peers as { vnis?: number[] }[])[0]!.vnis = [200];
    });
    await startG1();
    expect(await arrivals(sim!.b.underlayIp), 'ARP from a peer without VNI 100').to.equal(0);
    await stopGuest(sim!.opts, G1.name, runner);
    await expectNoVfwireOn(sim!.a);
  });

  it("with IPsec on, drops plaintext VXLAN even from the configured peer: it must come through the peer's SA", async () => {
    editConfig(sim!.a.configPath, (doc) => {
      delete (doc.peers as { vnis?: number[] }[])[0]!.vnis;
      doc.ipsec = { ...(doc.ipsec ?? {}), mode: 'static', offload: 'none' };
    });
    await startG1();
    expect(await arrivals(sim!.b.underlayIp), 'plaintext ARP from the peer').to.equal(0);
    // And the other way: g1's broadcast towards the peer has no SA to go through, so it stays here.
    const atB = await nftCounters(sim!.b.netns, 'inet', ['udp dport 4789']);
    try {
      await runner
        .run({
          argv: [
            'ip',
            'netns',
            'exec',
            guestNetns(sim!.opts, 'g1'),
            'ping',
            '-c',
            '2',
            '-i',
            '0.2',
            '-W',
            '1',
            '198.19.100.2',
          ],
        })
        .catch(() => undefined);
      expect(await atB.read(), 'VXLAN that reached host B').to.deep.equal([0]);
      expect(await vfwireDrops(sim!.a.netns, 'inet', 'vni_100_out'), 'dropped on the way out').to.be.greaterThan(0);
    } finally {
      await atB.remove();
    }
    const chain = (
      await runner.run({
        argv: ['ip', 'netns', 'exec', sim!.a.netns, 'nft', 'list', 'chain', 'inet', 'vfwire', 'vni_100'],
      })
    ).stdout;
    expect(chain).to.match(/ip saddr 198\.18\.0\.2 ipsec in reqid \d+ accept/);
    expect(await vfwireDrops(sim!.a.netns, 'inet', 'vni_100'), 'the drop counted them').to.be.greaterThan(0);
  });
});
