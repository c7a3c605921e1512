// `vfwire sim up|down`: build or remove the two simulated hosts of topology.ts.

import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { ValidationError, VfwireError } from '../errors.js';
import { hostSetup } from '../ops/host-setup.js';
import { dropIdleGuardTable } from '../overlay/rep-guard.js';
import { stopOvsDaemons } from '../overlay/ovs/daemons.js';
import { loadConfig } from '../config/config.js';
import { undoRelease } from '../ops/release.js';
import { ip } from '../exec/tools.js';
import { ExecRunner, type Runner } from '../exec/runner.js';
import { SimDevlinkRunner } from './devlink-emulator.js';
import { readLedger } from '../ledger/store.js';
import { planReleaseKeys } from '../plan/release.js';
import { writeSysfsTree } from './sysfs-tree.js';
import {
  MAX_SIM_VFS,
  repNetdev,
  simHosts,
  switchNetns,
  switchPort,
  UNDERLAY_MTU,
  UNDERLAY_PREFIX_LEN,
  vfNetdev,
  type SimHost,
  type SimOptions,
} from './topology.js';

const STATE_FILE = 'sim.json';

/**
 * Builds the sim as a host is after a boot (PF down without address, SR-IOV off, legacy
 * eswitch), then, unless `setup` is false, runs `vfwire host setup` on both hosts as an operator
 * would.
 */
export async function simUp(opts: SimOptions, runner: Runner, setup = true): Promise<SimHost[]> {
  validateSimOptions(opts);
  const hosts = simHosts(opts);
  const existing = await listNetns(runner);
  if (hosts.some((h) => existing.includes(h.netns))) {
    throw new VfwireError(
      `sim "${opts.prefix}" is already up (run: vfwire sim down${opts.prefix === 'vfwsim' ? '' : ` --prefix ${opts.prefix}`})`,
    );
  }
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  await writeFile(join(opts.dir, STATE_FILE), JSON.stringify(opts) + '\n', { mode: 0o600 });
  try {
    for (const h of hosts) await runner.run({ argv: ['ip', 'netns', 'add', h.netns] });
    const [a, b] = hosts as [SimHost, SimHost];
    if (opts.failover) await buildFabric(opts, hosts, runner);
    // The underlay cable: PF of host A <-> PF of host B.
    else
      await runner.run({
        argv: [
          'ip',
          'link',
          'add',
          'name',
          a.pf,
          'netns',
          a.netns,
          'type',
          'veth',
          'peer',
          'name',
          b.pf,
          'netns',
          b.netns,
        ],
      });
    // The two hosts side by side: each its own netns, tree, config and ledger.
    await Promise.all(hosts.map((h) => buildHost(h, opts, runner)));
    if (setup) await Promise.all(hosts.map((h) => simHostSetup(h.configPath)));
  } catch (err) {
    await simDown(opts, runner).catch(() => undefined);
    throw err;
  }
  return hosts;
}

/** `vfwire host setup` on a sim host: its devlink answered from the sim's tree (devlink-emulator.ts). */
export function simHostSetup(configPath: string): ReturnType<typeof hostSetup> {
  return hostSetup(
    configPath,
    false,
    (cfg) => new SimDevlinkRunner(cfg.sysfsRoot, new ExecRunner(cfg.commandTimeoutMs)),
  );
}

/**
 * The failover flavour's underlay: switches sw0 and sw1 (bridges in one netns) joined by an
 * inter-switch link, each host's PF0 cabled to sw0 and PF1 to sw1, so either host may fail over
 * alone and still reach the other through the link.
 */
async function buildFabric(opts: SimOptions, hosts: SimHost[], runner: Runner): Promise<void> {
  const ns = switchNetns(opts);
  await runner.run({ argv: ['ip', 'netns', 'add', ns] });
  const batch = [
    'link set dev lo up',
    'link add name sw0 type bridge',
    'link add name sw1 type bridge',
    'link add name isl0 type veth peer name isl1',
    'link set dev isl0 master sw0 up',
    'link set dev isl1 master sw1 up',
  ];
  for (const h of hosts) {
    for (const [i, pf] of [h.pf, h.failover!.pf2].entries()) {
      const port = switchPort(h, i as 0 | 1);
      await runner.run({
        argv: ['ip', 'link', 'add', 'name', pf, 'netns', h.netns, 'type', 'veth', 'peer', 'name', port, 'netns', ns],
      });
      batch.push(`link set dev ${port} mtu ${UNDERLAY_MTU} master sw${i} up`);
    }
  }
  batch.push(
    `link set dev isl0 mtu ${UNDERLAY_MTU}`,
    `link set dev isl1 mtu ${UNDERLAY_MTU}`,
    'link set dev sw0 up',
    'link set dev sw1 up',
  );
  await runner.run({ argv: ['ip', '-n', ns, '-batch', '-'], stdin: batch.join('\n') + '\n' });
}

async function buildHost(h: SimHost, opts: SimOptions, runner: Runner): Promise<void> {
  const batch = [`link set dev lo up`];
  const taps: string[] = [];
  for (let i = 0; i < opts.vfs; i++) {
    const vf = vfNetdev(h, i);
    if (vf) batch.push(`link add name ${vf} type veth peer name ${repNetdev(h, i)}`);
    else taps.push(`tuntap add dev ${repNetdev(h, i)} mode tap`);
  }
  await runner.run({ argv: ['ip', '-n', h.netns, '-batch', '-'], stdin: batch.join('\n') + '\n' });
  if (taps.length) await runner.run({ argv: ['ip', '-batch', '-'], stdin: taps.join('\n') + '\n' });

  const macs = new Map([
    ...(await linkMacs(h.netns, runner)),
    ...(taps.length ? await linkMacs(undefined, runner) : []),
  ]);
  await writeSysfsTree(join(h.dir, 'sys'), h, opts.vfs, macs);

  const peer = simHosts(opts).find((p) => p.id !== h.id)!;
  // A libvirt host keeps representors and bridges in the root netns, only the underlay in its own.
  const config = {
    backend: 'sim',
    netns: h.tapPrefix ? undefined : h.netns,
    sysfs_root: join(h.dir, 'sys'),
    state_dir: join(h.dir, 'state'),
    log_dir: join(h.dir, 'log'),
    // A sim host's log stays in its directory, out of this machine's journal.
    syslog: false,
    underlay: {
      interface: h.failover?.bond ?? h.pf,
      address: h.underlayIp,
      prefix_len: UNDERLAY_PREFIX_LEN,
      mtu: UNDERLAY_MTU,
      netns: h.tapPrefix ? h.netns : undefined,
    },
    vf_mtu: 9000,
    pfs: h.failover ? [{ name: h.pf }, { name: h.failover.pf2, num_vfs: 0 }] : [{ name: h.pf }],
    failover: h.failover
      ? h.failover.mode === 'active-backup'
        ? { mode: 'active-backup', miimon: 100 }
        : { mode: 'pf-switch' }
      : undefined,
    // pf-switch is ipsec watch's to run: static keys (vfwire ipsec keygen), the CPU's ESP here.
    ipsec:
      h.failover?.mode === 'pf-switch' ? { mode: 'static', offload: 'none', key_dir: join(h.dir, 'keys') } : undefined,
    peers: [{ name: `sim-${peer.id}`, address: peer.underlayIp }],
    ...(opts.overlay === 'ovs'
      ? { overlay: 'ovs', ovs: { run_dir: join(h.dir, 'ovs'), db_file: join(h.dir, 'ovs', 'conf.db') } }
      : {}),
  };
  await writeFile(h.configPath, `# sim host ${h.id}, written by vfwire sim up\n` + toYaml(config), { mode: 0o600 });
}

async function linkMacs(netns: string | undefined, runner: Runner): Promise<Map<string, string>> {
  const links = JSON.parse((await runner.run({ argv: ip(netns, '-j', 'link', 'show') })).stdout) as {
    ifname: string;
    address: string;
  }[];
  return new Map(links.map((l) => [l.ifname, l.address]));
}

/**
 * Removes the sim: whatever its hosts' ledgers still hold (objects outside the sim's netns, such
 * as a libvirt host's bridges, would outlive them), root-netns taps, every netns, its directory.
 * Safe to run twice.
 */
export async function simDown(opts: SimOptions, runner: Runner): Promise<void> {
  validateSimOptions(opts);
  for (const h of simHosts(opts)) {
    const data = await readLedger(join(h.dir, 'state')).catch(() => undefined);
    if (data) await undoRelease(planReleaseKeys(data, Object.keys(data.leases)).commands, runner);
    // OVS daemons host setup started for an `overlay: ovs` host (its datapath goes with the netns).
    const cfg = await loadConfig(h.configPath).catch(() => undefined);
    if (cfg?.overlay === 'ovs') await stopOvsDaemons(cfg.ovs.runDir, runner);
    if (h.tapPrefix) {
      for (let i = 0; i < opts.vfs; i++)
        await runner.run({ argv: ['ip', 'link', 'del', repNetdev(h, i)] }).catch(() => undefined);
      await dropIdleGuardTable(runner, undefined).catch(() => undefined);
    }
  }
  const mine = (await listNetns(runner)).filter((ns) => ns.startsWith(`${opts.prefix}-`));
  // Guests first: a VF end inside a guest netns dies with it, as a VF would with its VM.
  for (const ns of mine.sort((x, y) => Number(y.includes('-g-')) - Number(x.includes('-g-')))) {
    await runner.run({ argv: ['ip', 'netns', 'del', ns] }).catch(() => undefined);
  }
  // Only a directory the sim made (it holds sim.json) is ever removed.
  if (existsSync(join(opts.dir, STATE_FILE))) await rm(opts.dir, { recursive: true, force: true });
}

export async function readSimOptions(dir: string): Promise<SimOptions> {
  try {
    return JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')) as SimOptions;
  } catch {
    throw new VfwireError(`no sim in ${dir} (run: vfwire sim up${dir === '/run/vfwire-sim' ? '' : ` --dir ${dir}`})`);
  }
}

export async function listNetns(runner: Runner): Promise<string[]> {
  const out = (await runner.run({ argv: ['ip', '-j', 'netns', 'list'] })).stdout.trim();
  return out ? (JSON.parse(out) as { name: string }[]).map((n) => n.name) : [];
}

function validateSimOptions(opts: SimOptions): void {
  if (!/^[a-z][a-z0-9]{0,11}$/.test(opts.prefix))
    throw new ValidationError(
      `sim prefix "${opts.prefix}": use 1-12 lower-case letters and digits, starting with a letter`,
    );
  if (!Number.isInteger(opts.vfs) || opts.vfs < 1 || opts.vfs > MAX_SIM_VFS)
    throw new ValidationError(`sim vfs: must be 1..${MAX_SIM_VFS} (got ${opts.vfs})`);
  if (opts.failover && opts.libvirt)
    throw new ValidationError('sim: the failover flavour has netns guests only (no libvirt host)');
  // The libvirt host keeps its underlay apart from its representors, which OVS cannot serve (config/ovs-limits.ts).
  if (opts.overlay === 'ovs' && (opts.libvirt || opts.failover))
    throw new ValidationError('sim: overlay ovs has netns guests only, without failover (no libvirt host)');
  if (!opts.dir.startsWith('/') || opts.dir.split('/').filter(Boolean).length < 2)
    throw new ValidationError(`sim dir "${opts.dir}": use an absolute path at least two levels deep`);
}
