// A private sim host pair per test suite: random netns prefix, temp dir, removed in after()
// even when a test failed.

import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecRunner } from '../../src/exec/runner.js';
import { readLedger } from '../../src/ledger/store.js';
import type { Lease } from '../../src/ledger/types.js';
import { listNetns, simDown, simUp } from '../../src/sim/sim-host.js';
import { simHosts, type SimHost, type SimOptions } from '../../src/sim/topology.js';

export const runner = new ExecRunner(30_000);

export interface TestSim {
  opts: SimOptions;
  a: SimHost;
  b: SimHost;
}

export async function upTestSim(vfs = 4, flavour: { libvirt?: boolean } = {}, setup = true): Promise<TestSim> {
  const opts: SimOptions = { dir: join(mkdtempSync(join(tmpdir(), 'vfwt-')), 'sim'), prefix: `vfwt${randomBytes(3).toString('hex')}`, vfs, ...flavour };
  await simUp(opts, runner, setup);
  const [a, b] = simHosts(opts) as [SimHost, SimHost];
  return { opts, a, b };
}

export async function downTestSim(sim: TestSim | undefined): Promise<void> {
  if (!sim) return;
  await simDown(sim.opts, runner);
  const left = (await listNetns(runner)).filter((n) => n.startsWith(`${sim.opts.prefix}-`));
  if (left.length) throw new Error(`netns left behind: ${left.join(' ')}`);
}

/** Links in a netns (default: the root netns), by name, with their master (bridge) if any. */
export async function links(netns?: string): Promise<Map<string, { master?: string; operstate: string; mtu: number; address: string }>> {
  const out = (await runner.run({ argv: netns ? ['ip', '-n', netns, '-j', 'link', 'show'] : ['ip', '-j', 'link', 'show'] })).stdout;
  const list = JSON.parse(out) as { ifname: string; master?: string; operstate: string; mtu: number; address: string }[];
  return new Map(list.map((l) => [l.ifname, l]));
}

/** The leases a sim host's ledger holds now. */
export async function leasesOn(host: SimHost): Promise<Lease[]> {
  return Object.values((await readLedger(join(host.dir, 'state'))).leases);
}
