// `npm run bench`: what vfwire costs, as ratios measured in one run on this machine (absolute
// times on a shared 2-core machine mean little; ratios against a baseline of the same run do).
// Results: bench/results/latest.json and a summary table. `-- --no-libvirt` skips the part that
// restarts libvirtd (it installs a hook for a sim host); `-- --only hooks,libvirt,dataplane` runs
// only those parts; `-- --only lab` the bridge and OVS overlays in a kernel lab VM (minutes).

import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { benchDataplane } from '../src/bench/dataplane-on-sim.js';
import { makeTable } from '../src/table.js';
import { ExecRunner } from '../src/exec/runner.js';
import { readLedger } from '../src/ledger/store.js';
import { median, percentile, round } from '../src/bench/stats.js';
import { HOOK_LIFECYCLE, HOOK_SCRIPT, pinnedHookEnv, vfwireNetXml } from '../src/sim/hook-call.js';
import {
  defineDiskless,
  installSimHook,
  libvirtReachable,
  removeDomain,
  removeSimHook,
  virsh,
  virtType,
} from '../src/sim/libvirtd.js';
import { waitFor } from '../src/wait.js';
import { simDown, simUp } from '../src/sim/sim-host.js';
import type { SimHost, SimOptions } from '../src/sim/topology.js';

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), '../../bench/results');
const runner = new ExecRunner(60_000);
const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;
const xml = (name: string, n: number, tagged = true) =>
  `<domain type="kvm"><name>${name}</name><uuid>${uuid(n)}</uuid>${tagged ? `<metadata>${vfwireNetXml(['vni="100" encrypt="off"'])}</metadata>` : ''}<memory unit="KiB">65536</memory><devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>\n`;

interface Line {
  what: string;
  value: string;
  baseline: string;
  ratio: number | string;
  /** The target the ratio is held to (issue 14's goals), when it has one. */
  goal?: string;
}
const lines: Line[] = [];
const results: Record<string, unknown> = {};

async function timeIt(file: string, args: string[], input: string, env: Record<string, string> = {}): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await execa(file, args, { input, env, reject: false });
  if (r.exitCode !== 0) throw new Error(`${file} ${args.join(' ')}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * The five calls of one start and stop of `vm` through `hook` (default: vfwire's); their total
 * ms. `perCall` collects each call's ms under its operation.
 */
async function lifecycle(
  env: Record<string, string>,
  vm: string,
  domXml: string,
  hook = HOOK_SCRIPT,
  perCall?: Map<string, number[]>,
): Promise<number> {
  let sum = 0;
  for (const [op, sub] of HOOK_LIFECYCLE) {
    const ms = await timeIt(hook, [vm, op, sub, '-'], domXml, env);
    sum += ms;
    perCall?.set(op, [...(perCall.get(op) ?? []), ms]);
  }
  return sum;
}

// An untagged VM against the cheapest hook there is, a shell script that reads its stdin: the
// cost vfwire adds to every VM on the host that is not its own. Interleaved, so both see the
// same machine load.
async function untaggedLifecycle(env: Record<string, string>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vfwbench-sh-'));
  const shellHook = join(dir, 'hook');
  writeFileSync(shellHook, '#!/bin/sh\ncat > /dev/null\n', { mode: 0o755 });
  const hooks: number[] = [];
  const shell: number[] = [];
  try {
    for (let i = 0; i < 40; i++) {
      hooks.push(await lifecycle(env, 'plain', xml('plain', 1, false)));
      shell.push(await lifecycle({}, 'plain', xml('plain', 1, false), shellHook));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  results.untaggedLifecycle = { hooksMs: median(hooks), shellMs: median(shell), p95Ms: percentile(hooks, 95) };
  lines.push({
    what: 'untagged VM: the 5 hook calls of a start+stop, median of 40',
    value: `${round(median(hooks))} ms`,
    baseline: `shell hook reading stdin, 5 calls ${round(median(shell))} ms`,
    ratio: round(median(hooks) / median(shell)),
    goal: '<= 3',
  });
}

// A vfwire VM's whole start and stop as libvirt drives the hook, against one Node start.
async function taggedLifecycle(env: Record<string, string>): Promise<void> {
  const hooks: number[] = [];
  const node: number[] = [];
  const perCall = new Map<string, number[]>();
  for (let i = 0; i < 10; i++) {
    hooks.push(await lifecycle(env, 'tagged', xml('tagged', 2), HOOK_SCRIPT, perCall));
    node.push(await timeIt(process.execPath, ['-e', '0'], ''));
  }
  const calls = Object.fromEntries([...perCall].map(([op, ms]) => [op, round(median(ms))]));
  results.taggedLifecycle = { hooksMs: median(hooks), nodeMs: median(node), perCallMs: calls };
  lines.push({
    what: 'tagged VM: the 5 hook calls of a start+stop, median of 10',
    value: `${round(median(hooks))} ms`,
    baseline: `node -e 0 ${round(median(node))} ms`,
    ratio: round(median(hooks) / median(node)),
    goal: '<= 3',
  });
  // Where it goes: the two calls that run Node, each against one Node start.
  for (const op of ['prepare', 'release'])
    lines.push({
      what: `  of which ${op}, median of 10`,
      value: `${calls[op]} ms`,
      baseline: `node -e 0 ${round(median(node))} ms`,
      ratio: round(calls[op]! / median(node)),
    });
}

// n tagged VMs' prepare hooks at once, then their release hooks: the wall time of the prepares,
// and whether any VF was leased twice or any lease outlived its release.
async function prepareAtOnce(host: SimHost, env: Record<string, string>, n: number) {
  const state = join(host.dir, 'state');
  const vms = Array.from({ length: n }, (_, i) => ({ name: `p${i}`, xml: xml(`p${i}`, 1000 + i) }));
  const t0 = performance.now();
  const cpu0 = childCpuMs();
  await Promise.all(vms.map((v) => timeIt(HOOK_SCRIPT, [v.name, 'prepare', 'begin', '-'], v.xml, env)));
  const ms = performance.now() - t0;
  const cpuMs = childCpuMs() - cpu0;
  const leases = Object.values((await readLedger(state)).leases);
  const doubleLeases = leases.length - new Set(leases.map((l) => `${l.pf}/${l.vf}`)).size;
  await Promise.all(vms.map((v) => timeIt(HOOK_SCRIPT, [v.name, 'release', 'end', '-'], v.xml, env)));
  const left = Object.keys((await readLedger(state)).leases).length;
  return {
    vms: n,
    totalMs: round(ms),
    cpuMs: round(cpuMs),
    leases: leases.length,
    doubleLeases,
    leftAfterRelease: left,
  };
}

/** CPU time (ms) of this process's reaped children and theirs: /proc/self/stat cutime + cstime. */
function childCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  // After "pid (comm) ": state is field 3, so cutime (16) and cstime (17) are at 13 and 14.
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100; // USER_HZ, 100 on Linux/x86 (getconf CLK_TCK)

async function parallelStarts(host: SimHost, env: Record<string, string>): Promise<void> {
  const alone: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await prepareAtOnce(host, env, 1);
    alone.push(r.totalMs);
    cpu.push(r.cpuMs);
  }
  // One VM's prepare, CPU only (the shim, Node, every command): n of them cannot take less wall
  // time than n times that over the machine's cores, however the locking is done.
  const cpuPerVm = median(cpu);
  const base = median(alone);
  const rows: Record<string, unknown>[] = [{ vms: 1, medianMs: base, samples: alone, cpuMs: cpuPerVm }];
  for (const n of [8, 32, 64]) {
    const r = await prepareAtOnce(host, env, n);
    rows.push(r);
    lines.push({
      what: `${n} tagged VMs prepared at once: wall time (double leases ${r.doubleLeases}, left ${r.leftAfterRelease})`,
      value: `${r.totalMs} ms`,
      baseline: `1 VM alone ${round(base)} ms (median of 5)`,
      ratio: round(r.totalMs / base),
      ...(n === 64 ? { goal: '<= 4' } : {}),
    });
  }
  const r64 = rows.at(-1) as { totalMs: number };
  const floor = (64 * cpuPerVm) / cpus().length;
  lines.push({
    what: '64 tagged VMs prepared at once, against the CPU they need',
    value: `${r64.totalMs} ms`,
    baseline: `64 x ${round(cpuPerVm)} ms CPU / ${cpus().length} cores = ${round(floor)} ms`,
    ratio: round(r64.totalMs / floor),
  });
  results.parallelStarts = rows;
}

async function startToAttached(): Promise<void> {
  const skip = process.argv.includes('--no-libvirt')
    ? '--no-libvirt'
    : !(await libvirtReachable())
      ? 'libvirtd not reachable'
      : undefined;
  if (skip) {
    lines.push({ what: 'virsh start -> VF attached (QEMU), p50 of 10', value: 'skipped', baseline: skip, ratio: '-' });
    return;
  }
  const opts: SimOptions = {
    dir: mkdtempSync(join(tmpdir(), 'vfwbench-')) + '/sim',
    prefix: 'vfwbenchl',
    vfs: 1,
    libvirt: true,
  };
  const [a] = await simUp(opts, runner);
  const vm = 'vfwbenchl-vm';
  // The baseline: the same domain without vfwire metadata, so what libvirt and QEMU take alone
  // on this machine (the hook still runs for it, as the shim only).
  const plain = 'vfwbenchl-plain';
  const samples: number[] = [];
  const plainSamples: number[] = [];
  let hook: string | undefined;
  try {
    hook = await installSimHook('vfwbenchl-vfwire', a!.configPath);
    const type = await virtType();
    await defineDiskless(dirname(opts.dir), { name: vm, type, ifaces: ['vni="4100" encrypt="off"'] });
    await defineDiskless(dirname(opts.dir), { name: plain, type });
    for (let i = 0; i < 10; i++) {
      const p0 = Date.now();
      const p = await virsh('start', plain);
      if (p.exitCode !== 0) throw new Error(p.stderr);
      plainSamples.push(Date.now() - p0);
      await virsh('destroy', plain);
      const t0 = Date.now();
      const r = await virsh('start', vm);
      if (r.exitCode !== 0) throw new Error(r.stderr);
      const lease = await waitFor('attach', async () =>
        Object.values((await readLedger(join(a!.dir, 'state'))).leases).find((l) => l.attachedAt),
      );
      samples.push(Date.parse(lease.attachedAt!) - t0);
      await virsh('destroy', vm);
      await waitFor('release', async () =>
        Object.keys((await readLedger(join(a!.dir, 'state'))).leases).length === 0 ? true : undefined,
      );
    }
  } finally {
    await removeDomain(vm);
    await removeDomain(plain);
    if (hook) await removeSimHook(hook).catch(() => undefined);
    await simDown(opts, runner);
  }
  results.startToAttachedMs = { p50: median(samples), samples, untaggedStartP50: median(plainSamples), plainSamples };
  lines.push({
    what: 'virsh start -> VF attached (QEMU), p50 of 10',
    value: `${round(median(samples), 0)} ms`,
    baseline: `virsh start, same VM untagged ${round(median(plainSamples), 0)} ms`,
    ratio: String(round(median(samples) / median(plainSamples), 2)),
    goal: '<= 500 ms',
  });
}

async function overlayThroughput(): Promise<void> {
  const rows = await benchDataplane(2, 'vfwbenchd');
  results.dataplane = rows;
  const [overlay, raw] = rows;
  for (const key of ['iperf3/1500/2', 'iperf3/9000/2']) {
    lines.push({
      what: `sim overlay ${key} (2 s runs)`,
      value: `${overlay!.iperf[key]} Gb/s`,
      baseline: `raw veth ${raw!.iperf[key]} Gb/s`,
      ratio: round(overlay!.iperf[key]! / raw!.iperf[key]!),
    });
  }
}

// The bridge and OVS overlays against the raw underlay, in a kernel lab VM (bench/lab-dataplane.lab.ts).
async function labOverlays(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vfwbench-lab-'));
  try {
    const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
    const r = await execa(
      join(root, 'lab/run.sh'),
      ['--quiet', '--results', dir, '6.12', join(root, 'dist/bench/lab-dataplane.lab.js')],
      {
        reject: false,
      },
    );
    if (r.exitCode !== 0)
      throw new Error(`lab bench: ${r.stderr.trim().split('\n').at(-1)} (console: ${dir}/console.log)`);
    const { rows } = JSON.parse(readFileSync(join(dir, 'dataplane.json'), 'utf8')) as {
      rows: { approach: string; iperf: Record<string, number> }[];
    };
    results.labDataplane = rows;
    const raw = rows.at(-1)!;
    for (const row of rows.slice(0, -1))
      for (const key of ['iperf3/1500/2', 'iperf3/9000/2'])
        lines.push({
          what: `${row.approach} ${key}`,
          value: `${row.iperf[key]} Gb/s`,
          baseline: `raw veth ${raw.iperf[key]} Gb/s`,
          ratio: round(row.iperf[key]! / raw.iperf[key]!),
        });
    rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    lines.push({ what: 'lab: bridge and OVS overlays', value: 'failed', baseline: (err as Error).message, ratio: '-' });
  }
}

// `-- --only hooks,libvirt,dataplane` runs those parts alone (results then hold only them).
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1]!.split(',') : undefined;
const part = (name: string) => !only || only.includes(name);

const t0 = Date.now();
if (part('hooks')) {
  const opts: SimOptions = { dir: mkdtempSync(join(tmpdir(), 'vfwbench-')) + '/sim', prefix: 'vfwbench', vfs: 64 };
  const [hostA] = await simUp(opts, runner);
  try {
    // The hook as install.sh installs it: config and state directory pinned.
    const env = await pinnedHookEnv(hostA!.configPath);
    await untaggedLifecycle(env);
    await taggedLifecycle(env);
    await parallelStarts(hostA!, env);
  } finally {
    await simDown(opts, runner);
  }
}
if (part('libvirt')) await startToAttached();
if (part('dataplane')) await overlayThroughput();
// Opt-in (`--only lab`): a lab VM boot and two sims under TCG take minutes.
if (only?.includes('lab')) await labOverlays();

const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.versions.node}`;
const t = makeTable(['MEASURE', 'VALUE', 'BASELINE (same run)', 'RATIO', 'GOAL']);
for (const l of lines) t.push([l.what, l.value, l.baseline, String(l.ratio), l.goal ?? '-']);
console.log(`vfwire bench, ${new Date().toISOString()}, ${machine}, ${round((Date.now() - t0) / 1000, 0)} s`);
console.log(t.toString());
mkdirSync(RESULTS, { recursive: true });
writeFileSync(
  join(RESULTS, 'latest.json'),
  JSON.stringify({ measuredAt: new Date().toISOString(), machine, lines, results }, null, 2) + '\n',
);
