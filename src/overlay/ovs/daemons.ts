// The Open vSwitch daemons vfwire's bridge needs: found running (a systemd host runs Debian's
// openvswitch-switch), or, on a host without systemd (a container, the kernel lab), started by
// host setup itself: ovsdb-server on the configured database, ovs-vswitchd in the representors'
// netns (its kernel datapath is created in the netns of the process that asks:
// net/openvswitch/datapath.c ovs_dp_cmd_new, sock_net of the genetlink socket). Each daemon gets
// its control socket by name in the run directory, so any tool finds it without OVS_RUNDIR.

import { access, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ValidationError } from '../../errors.js';
import { ifExists } from '../../fs-absent.js';
import type { Runner } from '../../exec/runner.js';
import type { Step } from '../../exec/step.js';
import { OVS_UNRECORDED_OWNER, vsctl, type OvsHost } from './model.js';

export interface OvsDaemonPaths {
  dbFile: string;
  logDir: string;
}

const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

// Absent is false; any other failure (permissions, I/O) throws rather than reading as "not running".
const exists = async (p: string) => (await ifExists(access(p).then(() => true))) ?? false;

/** The control socket of a running ovs-vswitchd: the one vfwire names, else OVS's default (NAME.PID.ctl). */
export async function vswitchdControl(runDir: string): Promise<string> {
  const named = join(runDir, 'ovs-vswitchd.ctl');
  if (await exists(named)) return named;
  const pid = ((await ifExists(readFile(join(runDir, 'ovs-vswitchd.pid'), 'utf8'))) ?? '').trim();
  return join(runDir, `ovs-vswitchd.${pid || 'pid'}.ctl`);
}

export interface OvsDaemonsUp {
  /** ovsdb-server answers on db.sock. */
  db: boolean;
  /** ovs-vswitchd answers on its control socket. */
  vswitchd: boolean;
}

/** Which daemons answer. Any failure to answer counts as down: host setup then starts it, or says how. */
export async function ovsDaemonsUp(host: OvsHost, runner: Runner): Promise<OvsDaemonsUp> {
  const answers = (argv: string[]) =>
    runner.run({ argv }).then(
      () => true,
      () => false,
    );
  return {
    db: await answers(vsctl(host, '--no-wait', 'show')),
    vswitchd: await answers(['ovs-appctl', '--timeout=5', '-t', await vswitchdControl(host.runDir), 'version']),
  };
}

/**
 * Steps that start the daemons that are down, by hand; refused on a systemd host, whose
 * openvswitch-switch runs them (two supervisors of one daemon would fight).
 */
export async function planOvsStart(
  host: OvsHost,
  paths: OvsDaemonPaths,
  up: OvsDaemonsUp,
  systemd: boolean,
): Promise<Step[]> {
  if (up.db && up.vswitchd) return [];
  if (systemd)
    throw new ValidationError(
      `host setup: Open vSwitch is not answering (${up.db ? 'ovs-vswitchd' : `ovsdb-server on ${host.runDir}/db.sock`}); start it (systemctl start openvswitch-switch) and run host setup again`,
    );
  const run = host.runDir;
  const step = (kind: string, argv: string[], undo?: string[]): Step => ({
    kind,
    device: 'openvswitch',
    owner: OVS_UNRECORDED_OWNER,
    do: { argv },
    ...(undo ? { undo: { argv: undo } } : {}),
  });
  const inNetns = (argv: string[]) => (host.netns ? ['ip', 'netns', 'exec', host.netns, ...argv] : argv);
  const steps: Step[] = [step('ovs-dirs', ['mkdir', '-p', '-m', '0750', run, dirname(paths.dbFile)])];
  if (!up.db) {
    if (!(await exists(paths.dbFile)))
      steps.push(step('ovs-db-create', ['ovsdb-tool', 'create', paths.dbFile, SCHEMA]));
    steps.push(
      step(
        'ovsdb-server',
        [
          'ovsdb-server',
          paths.dbFile,
          `--remote=punix:${run}/db.sock`,
          `--pidfile=${run}/ovsdb-server.pid`,
          `--unixctl=${run}/ovsdb-server.ctl`,
          `--log-file=${paths.logDir}/ovsdb-server.log`,
          '--detach',
        ],
        ['ovs-appctl', '-t', `${run}/ovsdb-server.ctl`, 'exit'],
      ),
      step('ovs-db-init', vsctl(host, '--no-wait', 'init')),
    );
  }
  // The kernel datapath; a systemd host's ovs-ctl loads it the same way.
  if (!up.vswitchd)
    steps.push(
      step('ovs-module', ['modprobe', 'openvswitch']),
      step(
        'ovs-vswitchd',
        // OVS_RUNDIR: --unixctl names the control socket only; the bridges' BRIDGE.mgmt sockets go
        // to the run directory (lib/dirs.c ovs_rundir), where ovs-ofctl is pointed (model.ts mgmt).
        inNetns([
          'env',
          `OVS_RUNDIR=${run}`,
          'ovs-vswitchd',
          `unix:${run}/db.sock`,
          `--pidfile=${run}/ovs-vswitchd.pid`,
          `--unixctl=${run}/ovs-vswitchd.ctl`,
          `--log-file=${paths.logDir}/ovs-vswitchd.log`,
          '--detach',
        ]),
        ['ovs-appctl', '-t', `${run}/ovs-vswitchd.ctl`, 'exit'],
      ),
    );
  return steps;
}

/** Stops the daemons host setup started in `runDir` (by their named control sockets); gone ones are fine. */
export async function stopOvsDaemons(runDir: string, runner: Runner): Promise<void> {
  for (const d of ['ovs-vswitchd', 'ovsdb-server']) {
    const ctl = join(runDir, `${d}.ctl`);
    if (await exists(ctl)) await runner.run({ argv: ['ovs-appctl', '-t', ctl, 'exit'] }).catch(() => undefined);
  }
}
