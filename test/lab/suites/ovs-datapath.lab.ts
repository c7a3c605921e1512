// Kernel lab suite: Debian's Open vSwitch (3.1) forwards on Debian's kernel datapath, the ground
// `overlay: ovs` is to be built on (lab/run.sh KVER dist/test/lab/suites/ovs-datapath.lab.js).
// An earlier lab run saw every upcall lost ("Overriding n-handler-threads to 0"): OVS 3.1.0's
// count_cpu_cores() (lib/ovs-thread.c) reads 0 cores in the first seconds of a boot, so the
// per-CPU upcall dispatch gets no handler threads; fixed upstream in 3.1.1 (commits fff04b838,
// b2b467b3a), which Debian 12 does not ship. So ovs-vswitchd starts once the VM has been up
// past that window, and the suite proves packets cross and no upcall is lost.

import { expect } from 'chai';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { runner } from '../../helpers/sim.js';
import { requireLabVm } from '../lab-runner.js';

const DIR = '/tmp/vfwt-ovs';
// Every OVS tool finds the daemons' sockets, database and logs here.
const ENV = { OVS_RUNDIR: DIR, OVS_LOGDIR: DIR, OVS_DBDIR: DIR, OVS_SYSCONFDIR: DIR };
const ovs = (tool: string, ...args: string[]) => execa(tool, args, { env: ENV, timeout: 60_000 });
const NS = ['vfwt-ovs-a', 'vfwt-ovs-b'];
const BR = 'vfwtovs0';

/** Seconds since the VM booted. */
const uptime = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);

describe('lab: Open vSwitch on the kernel datapath', function () {
  this.timeout(240_000);

  before(async () => {
    requireLabVm();
    // count_cpu_cores() reads 0 while the boot is younger than its 10 s sampling window.
    while (uptime() < 12) await new Promise((r) => setTimeout(r, 500));
    rmSync(DIR, { recursive: true, force: true });
    mkdirSync(DIR, { recursive: true });
    await runner.run({ argv: ['modprobe', 'openvswitch'] });
    await ovs('ovsdb-tool', 'create', join(DIR, 'conf.db'), '/usr/share/openvswitch/vswitch.ovsschema');
    await ovs(
      'ovsdb-server',
      join(DIR, 'conf.db'),
      `--remote=punix:${join(DIR, 'db.sock')}`,
      '--pidfile',
      '--detach',
      '--log-file',
    );
    await ovs('ovs-vsctl', '--no-wait', 'init');
    await ovs('ovs-vswitchd', '--pidfile', '--detach', '--log-file', `unix:${join(DIR, 'db.sock')}`);
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
    for (const pidFile of ['ovs-vswitchd.pid', 'ovsdb-server.pid']) {
      try {
        process.kill(Number(readFileSync(join(DIR, pidFile), 'utf8').trim()));
      } catch {
        // Never started, or gone already.
      }
    }
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
