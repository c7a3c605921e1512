// Kernel lab suite: vfwire's OpenFlow rules (overlay/ovs/flows.ts) across two hosts, each its
// own netns with its own Open vSwitch (lab/run.sh KVER dist/test/lab/suites/ovs-vxlan.lab.js):
// vfwire's one flow-based VXLAN port (remote_ip=flow, key=flow: the rules set and match the VNI
// and the peer per packet, tun_id and tun_dst/tun_src), guests of VNI 100
// on both hosts and one of VNI 200 on B, all in one IP subnet. Same VNI reaches across the
// underlay, the other VNI receives nothing, not even the ARP broadcast, and the underlay carries
// VXLAN for VNI 100 only.

import { expect } from 'chai';
import { vniFlowsCommand, type OvsVni } from '../../../src/overlay/ovs/flows.js';
import { OVS_TUNNEL_PORT } from '../../../src/overlay/ovs/model.js';
import { runner } from '../../helpers/sim.js';
import { startOvs, type Ovs } from '../ovs-daemons.js';
import { addGuest, pingFrom, rxPackets } from '../ovs-guests.js';
import { requireLabVm } from '../lab-runner.js';

const HOSTS = [
  { name: 'a', ns: 'vfwt-ovx-ha', underlay: '198.18.62.1', peer: '198.18.62.2' },
  { name: 'b', ns: 'vfwt-ovx-hb', underlay: '198.18.62.2', peer: '198.18.62.1' },
] as const;
const GUESTS = [
  { ns: 'vfwt-ovx-g0', host: 0, port: 'vfwtovxg0', mac: '02:00:00:00:62:01', ip: '198.18.63.1', vni: 100 },
  { ns: 'vfwt-ovx-g1', host: 1, port: 'vfwtovxg1', mac: '02:00:00:00:62:02', ip: '198.18.63.2', vni: 100 },
  { ns: 'vfwt-ovx-g2', host: 1, port: 'vfwtovxg2', mac: '02:00:00:00:62:03', ip: '198.18.63.3', vni: 200 },
];
const BR = 'vfwtovx';
const TUNNEL = OVS_TUNNEL_PORT;

describe('lab: OpenFlow rules of two VNIs across two Open vSwitch hosts', function () {
  this.timeout(300_000);
  const ovs: Ovs[] = [];

  const vniOn = (h: number, vni: number): OvsVni => ({
    vni,
    members: GUESTS.filter((g) => g.host === h && g.vni === vni).map((g) => ({ port: g.port, mac: g.mac })),
    peers: [HOSTS[h]!.peer],
  });
  const ping = (g: number, to: string) => pingFrom(GUESTS[g]!, to);
  const rx = (g: number) => rxPackets(GUESTS[g]!);

  before(async () => {
    requireLabVm();
    for (const h of HOSTS) await runner.run({ argv: ['ip', 'netns', 'add', h.ns] });
    await runner.run({
      argv: ['ip', '-n', HOSTS[0].ns, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', HOSTS[1].ns],
    });
    for (const h of HOSTS) {
      await runner.run({ argv: ['ip', '-n', h.ns, 'addr', 'add', `${h.underlay}/24`, 'dev', 'u0'] });
      await runner.run({ argv: ['ip', '-n', h.ns, 'link', 'set', 'dev', 'u0', 'up'] });
      await runner.run({ argv: ['ip', '-n', h.ns, 'link', 'set', 'dev', 'lo', 'up'] });
    }
    for (const [i, h] of HOSTS.entries()) {
      const o = await startOvs(`/tmp/vfwt-ovx-${h.name}`, h.ns);
      ovs.push(o);
      await o.run('ovs-vsctl', ['add-br', BR, '--', 'set-fail-mode', BR, 'secure']);
      await o.run('ovs-vsctl', [
        'add-port',
        BR,
        TUNNEL,
        '--',
        'set',
        'interface',
        TUNNEL,
        'type=vxlan',
        'options:remote_ip=flow',
        `options:local_ip=${h.underlay}`,
        'options:key=flow',
        'options:dst_port=4789',
      ]);
      for (const g of GUESTS.filter((x) => x.host === i)) await addGuest(o, BR, g, h.ns, 1400);
      for (const vni of [100, 200]) {
        const cmd = vniFlowsCommand({ bridge: BR, runDir: o.dir }, vniOn(i, vni));
        await o.run(cmd.argv[0]!, cmd.argv.slice(1), cmd.stdin);
      }
    }
  });

  after(async () => {
    for (const o of ovs) o.stop();
    for (const g of GUESTS) await runner.run({ argv: ['ip', 'netns', 'del', g.ns] }).catch(() => undefined);
    for (const h of HOSTS) await runner.run({ argv: ['ip', 'netns', 'del', h.ns] }).catch(() => undefined);
  });

  it('VNI 100 reaches across the underlay; VNI 200 in the same subnet receives nothing of it', async () => {
    const across = await ping(0, GUESTS[1]!.ip);
    const flows = async () =>
      (await Promise.all(ovs.map((o) => o.run('ovs-ofctl', ['-O', 'OpenFlow14', 'dump-flows', BR])))).join('\n');
    expect(across.exitCode, `${across.stdout}\n${await flows()}`).to.equal(0);
    const before = await rx(2);
    expect((await ping(0, GUESTS[2]!.ip)).exitCode, 'VNI 100 -> VNI 200').to.not.equal(0);
    expect(await rx(2), `VNI 200's guest received: ${await flows()}`).to.equal(before);
    // What B took in from its tunnel, per VNI: VNI 100 only (A has no member of 200 to send).
    const fromTunnel = (vni: number) =>
      Number(new RegExp(`n_packets=(\\d+),.*tun_id=0x${vni.toString(16)},in_port=${TUNNEL} `).exec(b)?.[1]);
    const b = await ovs[1]!.run('ovs-ofctl', ['-O', 'OpenFlow14', '--names', 'dump-flows', BR]);
    expect(fromTunnel(100), b).to.be.greaterThan(0);
    expect(fromTunnel(200), b).to.equal(0);
  });
});
