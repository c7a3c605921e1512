// `npm run bench`: what vfwire costs, as ratios measured in one run on this machine (absolute
// times on a shared 2-core machine mean little; ratios against a baseline of the same run do).
// Results: bench/results/latest.json and a summary table. `-- --no-libvirt` skips the part that
// restarts libvirtd (it installs a hook for a sim host).

import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { benchDataplane } from '../src/bench/dataplane-on-sim.js';
import { makeTable } from '../src/table.js';
import { ExecRunner } from '../src/exec/runner.js';
import { readLedger } from '../src/ledger/store.js';
import { median, percentile, round } from '../src/bench/stats.js';
import { HOOK_SCRIPT, vfwireNetXml } from '../src/sim/hook-call.js';
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
}
const lines: Line[] = [];
const results: Record<string, unknown> = {};

async function timeIt(file: string, args: string[], input: string, env: Record<string, string> = {}): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await execa(file, args, { input, env, reject: false });
  if (r.exitCode !== 0) throw new Error(`${file} ${args.join(' ')}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function hookCost(host: SimHost): Promise<void> {
  const untagged = xml('plain', 1, false);
  const env = { VFWIRE_CONFIG: host.configPath };
  const hook: number[] = [];
  const truth: number[] = [];
  // Interleaved, so both see the same machine load.
  for (let i = 0; i < 200; i++) {
    hook.push(await timeIt(HOOK_SCRIPT, ['plain', 'prepare', 'begin', '-'], untagged, env));
    truth.push(await timeIt('/bin/true', [], untagged));
  }
  const r = {
    hookP50: percentile(hook, 50),
    hookP95: percentile(hook, 95),
    trueP50: percentile(truth, 50),
    trueP95: percentile(truth, 95),
  };
  results.untaggedHook = r;
  lines.push({
    what: 'untagged VM prepare hook, p50 (200 runs)',
    value: `${round(r.hookP50)} ms`,
    baseline: `/bin/true ${round(r.trueP50)} ms`,
    ratio: round(r.hookP50 / r.trueP50),
  });
  lines.push({
    what: 'untagged VM prepare hook, p95',
    value: `${round(r.hookP95)} ms`,
    baseline: `/bin/true ${round(r.trueP95)} ms`,
    ratio: round(r.hookP95 / r.trueP95),
  });
}

// release/end reaches Node for every VM on the host (hooks/qemu: leases are freed by UUID even
// when the metadata is gone); a VM without leases should cost little more than Node itself.
async function releaseWithoutLeases(host: SimHost): Promise<void> {
  const env = { VFWIRE_CONFIG: host.configPath };
  const hook: number[] = [];
  const node: number[] = [];
  for (let i = 0; i < 30; i++) {
    hook.push(await timeIt(HOOK_SCRIPT, ['plain', 'release', 'end', '-'], xml('plain', 1, false), env));
    node.push(await timeIt(process.execPath, ['-e', '0'], ''));
  }
  results.releaseWithoutLeases = { hookP50: percentile(hook, 50), nodeP50: percentile(node, 50) };
  lines.push({
    what: 'release hook of a VM without leases, p50 (30 runs)',
    value: `${round(percentile(hook, 50))} ms`,
    baseline: `node -e 0 ${round(percentile(node, 50))} ms`,
    ratio: round(percentile(hook, 50) / percentile(node, 50)),
  });
}

async function taggedLifecycle(host: SimHost): Promise<void> {
  const env = { VFWIRE_CONFIG: host.configPath };
  const ops = [
    ['prepare', 'begin'],
    ['start', 'begin'],
    ['started', 'begin'],
    ['stopped', 'end'],
    ['release', 'end'],
  ];
  const hooks: number[] = [];
  const node: number[] = [];
  for (let i = 0; i < 10; i++) {
    let sum = 0;
    for (const [op, sub] of ops) sum += await timeIt(HOOK_SCRIPT, ['tagged', op!, sub!, '-'], xml('tagged', 2), env);
    hooks.push(sum);
    node.push(await timeIt(process.execPath, ['-e', '0'], ''));
  }
  results.taggedLifecycle = { hooksMs: median(hooks), nodeMs: median(node) };
  lines.push({
    what: 'tagged VM: all 5 hook calls of a start+stop, median of 10',
    value: `${round(median(hooks))} ms`,
    baseline: `node -e 0 ${round(median(node))} ms`,
    ratio: round(median(hooks) / median(node)),
  });
}

async function parallelStarts(host: SimHost): Promise<void> {
  const env = { VFWIRE_CONFIG: host.configPath };
  const state = join(host.dir, 'state');
  const rows: Record<string, unknown>[] = [];
  let base = 0;
  for (const n of [1, 8, 32, 64]) {
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        timeIt(HOOK_SCRIPT, [`p${i}`, 'prepare', 'begin', '-'], xml(`p${i}`, 1000 + i), env),
      ),
    );
    const ms = performance.now() - t0;
    const leases = Object.values((await readLedger(state)).leases);
    const distinct = new Set(leases.map((l) => `${l.pf}/${l.vf}`)).size;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        timeIt(HOOK_SCRIPT, [`p${i}`, 'release', 'end', '-'], xml(`p${i}`, 1000 + i), env),
      ),
    );
    const left = Object.keys((await readLedger(state)).leases).length;
    if (n === 1) base = ms;
    rows.push({
      vms: n,
      totalMs: round(ms),
      perVmMs: round(ms / n),
      leases: leases.length,
      doubleLeases: leases.length - distinct,
      leftAfterRelease: left,
    });
    lines.push({
      what: `${n} tagged VMs prepared in parallel: per VM`,
      value: `${round(ms / n)} ms`,
      baseline: `1 VM ${round(base)} ms`,
      ratio: `${round(ms / n / base)} (double leases ${leases.length - distinct}, left ${left})`,
    });
  }
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
  const samples: number[] = [];
  let hook: string | undefined;
  try {
    hook = await installSimHook('vfwbenchl-vfwire', a!.configPath);
    await defineDiskless(dirname(opts.dir), { name: vm, type: await virtType(), ifaces: ['vni="4100" encrypt="off"'] });
    for (let i = 0; i < 10; i++) {
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
    if (hook) await removeSimHook(hook).catch(() => undefined);
    await simDown(opts, runner);
  }
  results.startToAttachedMs = { p50: median(samples), samples };
  lines.push({
    what: 'virsh start -> VF attached (QEMU), p50 of 10',
    value: `${round(median(samples), 0)} ms`,
    baseline: '-',
    ratio: '-',
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

const t0 = Date.now();
const opts: SimOptions = { dir: mkdtempSync(join(tmpdir(), 'vfwbench-')) + '/sim', prefix: 'vfwbench', vfs: 64 };
const [hostA] = await simUp(opts, runner);
try {
  await hookCost(hostA!);
  await releaseWithoutLeases(hostA!);
  await taggedLifecycle(hostA!);
  await parallelStarts(hostA!);
} finally {
  await simDown(opts, runner);
}
await startToAttached();
await overlayThroughput();

const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.versions.node}`;
const t = makeTable(['MEASURE', 'VALUE', 'BASELINE (same run)', 'RATIO']);
for (const l of lines) t.push([l.what, l.value, l.baseline, String(l.ratio)]);
console.log(`vfwire bench, ${new Date().toISOString()}, ${machine}, ${round((Date.now() - t0) / 1000, 0)} s`);
console.log(t.toString());
mkdirSync(RESULTS, { recursive: true });
writeFileSync(
  join(RESULTS, 'latest.json'),
  JSON.stringify({ measuredAt: new Date().toISOString(), machine, lines, results }, null, 2) + '\n',
);
