// Kernel lab suite: Debian's Open vSwitch (3.1) forwards on Debian's kernel datapath, the ground
// `overlay: ovs` is to be built on (lab/run.sh KVER dist/test/lab/suites/ovs-datapath.lab.js).
// An earlier lab run saw every upcall lost ("Overriding n-handler-threads to 0"): OVS 3.1.0's
// count_cpu_cores() (lib/ovs-thread.c) reads 0 cores in the first seconds of a boot, so the
// per-CPU upcall dispatch gets no handler threads; fixed upstream in 3.1.1 (commits fff04b838,
// b2b467b3a), which Debian 12 does not ship. So ovs-vswitchd starts once the VM has been up
// past that window, and the suite proves packets cross and no upcall is lost.

import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { vniFlowsCommand, type OvsVni } from '../../../src/overlay/ovs/flows.js';
import { runner } from '../../helpers/sim.js';
import { requireLabVm } from '../lab-runner.js';
import { startOvs, type Ovs } from '../ovs-daemons.js';
import { addGuest, pingFrom, rxPackets } from '../ovs-guests.js';

const DIR = '/tmp/vfwt-ovs';
// The daemons' sockets, database and logs (test/lab/ovs-daemons.ts).
let instance: Ovs | undefined;
const ovs = async (tool: string, ...args: string[]) => ({ stdout: await instance!.run(tool, args) });
const NS = ['vfwt-ovs-a', 'vfwt-ovs-b'];
const BR = 'vfwtovs0';

describe('lab: Open vSwitch', function () {
  this.timeout(240_000);
  before(async () => {
    requireLabVm();
    instance = await startOvs(DIR);
  });
  after(() => instance?.stop());

  describe('on the kernel datapath', function () {
    this.timeout(240_000);

    before(async () => {
      await ovs('ovs-vsctl', 'add-br', BR);
      await runner.run({ argv: ['ip', 'link', 'set', 'dev', BR, 'up'] });
      for (const [i, ns] of NS.entries()) {
        await runner.run({ argv: ['ip', 'netns', 'add', ns] });
        await runner.run({
          argv: ['ip', 'link', 'add', `vfwtovsp${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns],
        });
        await runner.run({ argv: ['ip', '-n', ns, 'addr', 'add', `198.18.60.${i + 1}/24`, 'dev', 'eth0'] });
        await runner.run({ argv: ['ip', '-n', ns, 'link', 'set', 'dev', 'eth0', 'up'] });
        await runner.run({ argv: ['ip', 'link', 'set', 'dev', `vfwtovsp${i}`, 'up'] });
        await ovs('ovs-vsctl', 'add-port', BR, `vfwtovsp${i}`);
      }
    });

    after(async () => {
      await ovs('ovs-vsctl', '--if-exists', 'del-br', BR).catch(() => undefined);
      for (const ns of NS) await runner.run({ argv: ['ip', 'netns', 'del', ns] }).catch(() => undefined);
    });

    it('gives the datapath handler threads (none on 3.1.0 in the first seconds of a boot)', async () => {
      const log = readFileSync(join(DIR, 'ovs-vswitchd.log'), 'utf8');
      expect(log).to.not.include('Overriding n-handler-threads to 0');
      const version = (await ovs('ovs-vswitchd', '--version')).stdout.split('\n')[0];
      expect(version).to.match(/Open vSwitch\) \d+\.\d+/);
    });

    it('forwards between two ports of one bridge, and loses no upcall doing it', async () => {
      const ping = await execa(
        'ip',
        ['netns', 'exec', NS[0]!, 'ping', '-c', '3', '-i', '0.3', '-W', '5', '198.18.60.2'],
        {
          reject: false,
        },
      );
      expect(ping.exitCode, ping.stdout + ping.stderr).to.equal(0);
      const show = (await ovs('ovs-appctl', 'dpctl/show')).stdout;
      const lookups = /lookups: hit:(\d+) missed:(\d+) lost:(\d+)/.exec(show);
      expect(lookups, show).to.not.equal(null);
      expect(Number(lookups![2]), 'upcalls: the first packets go to userspace').to.be.greaterThan(0);
      expect(Number(lookups![3]), 'upcalls lost').to.equal(0);
    });
  });

  // vfwire's rules (overlay/ovs/flows.ts) on a secure-mode bridge of three ports: two of VNI 100,
  // one of VNI 200, all in one IP subnet, so only the rules keep them apart.
  describe("lab: vfwire's OpenFlow rules isolate VNIs on Open vSwitch", function () {
    this.timeout(240_000);
    const SBR = 'vfwtovs1';
    const PORTS = [
      { ns: 'vfwt-ovs-v0', port: 'vfwtovsv0', mac: '02:00:00:00:61:01', ip: '198.18.61.1', vni: 100 },
      { ns: 'vfwt-ovs-v1', port: 'vfwtovsv1', mac: '02:00:00:00:61:02', ip: '198.18.61.2', vni: 100 },
      { ns: 'vfwt-ovs-v2', port: 'vfwtovsv2', mac: '02:00:00:00:61:03', ip: '198.18.61.3', vni: 200 },
    ];
    const vni = (n: number): OvsVni => ({
      vni: n,
      members: PORTS.filter((p) => p.vni === n).map((p) => ({ port: p.port, mac: p.mac })),
      peers: [],
    });
    const apply = async (v: OvsVni) => {
      const cmd = vniFlowsCommand({ bridge: SBR, runDir: instance!.dir }, v);
      await instance!.run(cmd.argv[0]!, cmd.argv.slice(1), cmd.stdin);
    };
    const ping = (from: number, to: string) => pingFrom(PORTS[from]!, to);
    const rx = (i: number) => rxPackets(PORTS[i]!);

    before(async () => {
      await ovs('ovs-vsctl', 'add-br', SBR, '--', 'set-fail-mode', SBR, 'secure');
      await runner.run({ argv: ['ip', 'link', 'set', 'dev', SBR, 'up'] });
      for (const p of PORTS) await addGuest(instance!, SBR, p);
      await apply(vni(100));
      await apply(vni(200));
    });

    after(async () => {
      await ovs('ovs-vsctl', '--if-exists', 'del-br', SBR).catch(() => undefined);
      for (const p of PORTS) await runner.run({ argv: ['ip', 'netns', 'del', p.ns] }).catch(() => undefined);
    });

    it('same VNI reaches; the other VNI, in the same subnet, gets not even the ARP broadcast', async () => {
      const same = await ping(0, PORTS[1]!.ip);
      expect(same.exitCode, same.stdout).to.equal(0);
      const before = await rx(2);
      const other = await ping(0, PORTS[2]!.ip);
      expect(other.exitCode, 'VNI 100 -> VNI 200').to.not.equal(0);
      expect((await ping(2, PORTS[0]!.ip)).exitCode, 'VNI 200 -> VNI 100').to.not.equal(0);
      const flows = async () => (await ovs('ovs-ofctl', '-O', 'OpenFlow14', 'dump-flows', SBR)).stdout;
      expect(await rx(2), `VNI 200's port received: ${await flows()}`).to.equal(before);
    });

    it('a member that changes its MAC is cut off (its frames and ARP carry a source no rule admits)', async () => {
      const p = PORTS[0]!;
      await runner.run({ argv: ['ip', '-n', p.ns, 'link', 'set', 'dev', 'eth0', 'address', '02:00:00:00:61:99'] });
      await runner.run({ argv: ['ip', '-n', p.ns, 'neigh', 'flush', 'dev', 'eth0'] });
      try {
        expect((await ping(0, PORTS[1]!.ip)).exitCode, 'spoofed source').to.not.equal(0);
      } finally {
        await runner.run({ argv: ['ip', '-n', p.ns, 'link', 'set', 'dev', 'eth0', 'address', p.mac] });
      }
      expect((await ping(0, PORTS[1]!.ip)).exitCode, 'its own MAC again').to.equal(0);
    });

    it("a VNI's rules are replaced whole: with no members none of them is left", async () => {
      await apply({ vni: 100, members: [], peers: [] });
      const flows = (await ovs('ovs-ofctl', '-O', 'OpenFlow14', 'dump-flows', SBR)).stdout;
      expect(flows).to.not.include('cookie=0x64');
      expect(flows).to.include('cookie=0xc8');
      expect((await ping(0, PORTS[1]!.ip)).exitCode, 'VNI 100 without rules').to.not.equal(0);
    });
  });
});
