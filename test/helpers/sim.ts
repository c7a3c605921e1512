// A private sim host pair per test suite: random netns prefix, temp dir, removed in after()
// even when a test failed.

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ExecRunner } from '../../src/exec/runner.js';
import { ip } from '../../src/exec/tools.js';
import { readLedger } from '../../src/ledger/store.js';
import type { Lease } from '../../src/ledger/types.js';
import { waitFor } from '../../src/wait.js';
import { listNetns, simDown, simUp } from '../../src/sim/sim-host.js';
import { simHosts, type SimHost, type SimOptions } from '../../src/sim/topology.js';

export const runner = new ExecRunner(30_000);

export interface TestSim {
  opts: SimOptions;
  a: SimHost;
  b: SimHost;
}

export async function upTestSim(
  vfs = 4,
  flavour: Pick<SimOptions, 'libvirt' | 'failover' | 'overlay'> = {},
  setup = true,
): Promise<TestSim> {
  const opts: SimOptions = {
    dir: join(mkdtempSync(join(tmpdir(), 'vfwt-')), 'sim'),
    prefix: `vfwt${randomBytes(3).toString('hex')}`,
    vfs,
    ...flavour,
  };
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

/** A config.yaml as plain data; `ipsec` typed loosely so a test can set one of its keys. */
export type ConfigDoc = Record<string, unknown> & { ipsec?: Record<string, unknown> };

/** Parses the config at `path`, lets `edit` change it, and writes it back (mode 0600 if new); its comments are dropped. */
export function editConfig(path: string, edit: (doc: ConfigDoc) => void): void {
  const doc = parse(readFileSync(path, 'utf8')) as ConfigDoc;
  edit(doc);
  writeFileSync(path, stringify(doc), { mode: 0o600 });
}

/** A variant of the config at `path`: a copy beside it named `name`, with `keys` set; its path. */
export function configVariant(path: string, name: string, keys: ConfigDoc): string {
  const variant = join(dirname(path), name);
  writeFileSync(variant, stringify({ ...(parse(readFileSync(path, 'utf8')) as ConfigDoc), ...keys }), { mode: 0o600 });
  return variant;
}

/** Links in a netns (default: the root netns), by name, with their master (bridge) if any. */
export async function links(
  netns?: string,
): Promise<Map<string, { master?: string; operstate: string; mtu: number; address: string }>> {
  const out = (await runner.run({ argv: ip(netns, '-j', 'link', 'show') })).stdout;
  const list = JSON.parse(out) as {
    ifname: string;
    master?: string;
    operstate: string;
    mtu: number;
    address: string;
  }[];
  return new Map(list.map((l) => [l.ifname, l]));
}

/** The leases a sim host's ledger holds now. */
export async function leasesOn(host: SimHost): Promise<Lease[]> {
  return Object.values((await readLedger(join(host.dir, 'state'))).leases);
}

export async function leaseOf(host: SimHost, vm: string): Promise<Lease | undefined> {
  return (await leasesOn(host)).find((l) => l.vm === vm);
}

/** Nothing of vfwire's is left on `host`: no lease or VNI in its ledger, no vfw* link, bridge member, admission chain or guarded representor in its netns. */
export async function expectNoVfwireOn(host: SimHost): Promise<void> {
  const ledger = await readLedger(join(host.dir, 'state'));
  expect(ledger.leases, 'leases').to.deep.equal({});
  expect(ledger.vnis, 'vnis').to.deep.equal({});
  const netns = await links(host.netns);
  expect(
    [...netns.keys()].filter((n) => n.startsWith('vfw')),
    'vfw links',
  ).to.deep.equal([]);
  expect(
    [...netns.values()].filter((l) => l.master).map((l) => l.master),
    'bridge members',
  ).to.deep.equal([]);
  expect(await admissionChains(host.netns), 'admission chains').to.deep.equal([]);
  expect(await guardedPorts(host.netns), 'guarded representors').to.deep.equal([]);
}

/** The VNI chains in nftables' inet vfwire table of a netns (the table itself may stay, empty). */
export async function admissionChains(netns: string): Promise<string[]> {
  const r = await runner
    .run({ argv: ['ip', 'netns', 'exec', netns, 'nft', '-j', 'list', 'table', 'inet', 'vfwire'] })
    .catch((e: unknown) => {
      if (/No such file or directory/.test(String(e))) return undefined;
      throw e;
    });
  if (!r) return [];
  const items = (JSON.parse(r.stdout) as { nftables: { chain?: { name: string } }[] }).nftables;
  return items.flatMap((i) => (i.chain && i.chain.name.startsWith('vni_') ? [i.chain.name] : []));
}

/** Host A of a libvirt sim is back to what the sim built: no lease, no vfwire bridge or VXLAN of `vnis`, every tap free. */
export async function expectHostAClean(sim: TestSim, vnis: number[]): Promise<void> {
  await waitFor('leases to be released', async () => ((await leasesOn(sim.a)).length === 0 ? true : undefined));
  const host = await links();
  for (const vni of vnis) {
    expect(host.has(`vfwbr${vni}`), `bridge of ${vni}`).to.equal(false);
    expect(host.has(`vfwvx${vni}`), `vxlan of ${vni}`).to.equal(false);
  }
  for (let i = 0; i < sim.opts.vfs; i++)
    expect(host.get(`${sim.a.tapPrefix}${i}`)?.master, `tap ${i} master`).to.equal(undefined);
}

/** Representors in the bridge overlay's anti-spoofing guard (overlay/rep-guard.ts) of a netns. */
export async function guardedPorts(netns?: string): Promise<string[]> {
  const argv = [
    ...(netns ? ['ip', 'netns', 'exec', netns] : []),
    'nft',
    '-j',
    'list',
    'set',
    'bridge',
    'vfwire',
    'reps',
  ];
  const r = await runner.run({ argv }).catch((e: unknown) => {
    if (/No such file or directory/.test(String(e))) return undefined;
    throw e;
  });
  if (!r) return [];
  const set = (JSON.parse(r.stdout) as { nftables: { set?: { elem?: string[] } }[] }).nftables.find((i) => i.set)?.set;
  return set?.elem ?? [];
}
