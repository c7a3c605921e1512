// Open vSwitch daemons for the lab suites: ovsdb-server and ovs-vswitchd started by hand (no
// systemd in a lab VM), each instance's sockets, database and logs in a directory of its own,
// optionally in a netns (the kernel datapath is per netns, so each sim host gets its own).
// OVS 3.1.0's count_cpu_cores() (lib/ovs-thread.c) reads 0 cores in a boot's first ~10 s and
// the datapath then gets no handler threads, every upcall lost; fixed in 3.1.1 (fff04b838,
// b2b467b3a), not in Debian 12: ovs-vswitchd starts once the VM is past that.

import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { runner } from '../helpers/sim.js';

export interface Ovs {
  dir: string;
  /** An OVS tool against this instance (in its netns), stdin optional. */
  run(tool: string, args: string[], input?: string): Promise<string>;
  stop(): void;
}

const uptime = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);

export async function startOvs(dir: string, netns?: string): Promise<Ovs> {
  while (uptime() < 12) await new Promise((r) => setTimeout(r, 500));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await runner.run({ argv: ['modprobe', 'openvswitch'] });
  const env = { OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir, OVS_SYSCONFDIR: dir };
  const run = async (tool: string, args: string[], input?: string) => {
    const argv = netns ? ['ip', 'netns', 'exec', netns, tool, ...args] : [tool, ...args];
    return (await execa(argv[0]!, argv.slice(1), { env, timeout: 60_000, ...(input ? { input } : {}) })).stdout;
  };
  const sock = `unix:${join(dir, 'db.sock')}`;
  await run('ovsdb-tool', ['create', join(dir, 'conf.db'), '/usr/share/openvswitch/vswitch.ovsschema']);
  await run('ovsdb-server', [
    join(dir, 'conf.db'),
    `--remote=punix:${join(dir, 'db.sock')}`,
    '--pidfile',
    '--detach',
    '--log-file',
  ]);
  await run('ovs-vsctl', ['--no-wait', 'init']);
  await run('ovs-vswitchd', ['--pidfile', '--detach', '--log-file', sock]);
  const stop = () => {
    for (const pidFile of ['ovs-vswitchd.pid', 'ovsdb-server.pid']) {
      try {
        process.kill(Number(readFileSync(join(dir, pidFile), 'utf8').trim()));
      } catch {
        // Never started, or gone already.
      }
    }
  };
  return { dir, run, stop };
}
