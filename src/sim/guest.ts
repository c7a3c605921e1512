// Sim guests: a "VM" is a network namespace. Starting one runs vfwire's real hook script with a
// domain XML, exactly as libvirt would, then plays the attach: the leased VF's netdev moves into
// the guest netns (the lab notes' ns0) and gets the guest's address. Stopping reverses it.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ValidationError, VfwireError } from '../errors.js';
import type { Runner } from '../exec/runner.js';
import { leasesOf } from '../ledger/record.js';
import { readLedger } from '../ledger/store.js';
import { callHook, hookDomainXml } from './hook-call.js';
import { listNetns } from './sim-host.js';
import { guestNetns, simHosts, type SimHost, type SimOptions } from './topology.js';

export interface GuestSpec {
  name: string;
  host: 'a' | 'b';
  vni: number;
  /** Address with prefix length, e.g. 198.19.100.1/24 */
  ip: string;
  encrypt?: 'required' | 'off';
  mtu?: number;
}

interface GuestRecord extends GuestSpec {
  uuid: string;
  netns: string;
  /** Known once prepare leased a VF. */
  vfDev?: string;
}

export async function startGuest(opts: SimOptions, spec: GuestSpec, runner: Runner): Promise<GuestRecord> {
  validateGuest(spec);
  const host = hostOf(opts, spec.host);
  const uuid = guestUuid(opts, spec.name);
  const xml = domainXml(spec, uuid);
  const netns = guestNetns(opts, spec.name);
  if ((await listNetns(runner)).includes(netns)) throw new VfwireError(`sim guest ${spec.name} is already running`);

  // Recorded before the first hook, so a stop after any failure below finds what to release.
  const rec: GuestRecord = { ...spec, uuid, netns };
  await writeRecord(opts, rec);
  try {
    await runHook(host, spec.name, ['prepare', 'begin'], xml);
    await runHook(host, spec.name, ['start', 'begin'], xml);
    await runHook(host, spec.name, ['started', 'begin'], xml);
    const lease = leasesOf(await readLedger(join(host.dir, 'state')), uuid)[0];
    if (!lease?.vfDev) throw new VfwireError(`sim guest ${spec.name}: no lease recorded after prepare`);
    rec.vfDev = lease.vfDev;
    await writeRecord(opts, rec);
    await runner.run({ argv: ['ip', 'netns', 'add', netns] });
    await runner.run({ argv: ['ip', '-n', host.netns, 'link', 'set', 'dev', lease.vfDev, 'netns', netns] });
    await runner.run({
      argv: ['ip', '-n', netns, '-batch', '-'],
      stdin:
        [`link set dev lo up`, `addr add ${spec.ip} dev ${lease.vfDev}`, `link set dev ${lease.vfDev} up`].join('\n') +
        '\n',
    });
    return rec;
  } catch (err) {
    await stopGuest(opts, spec.name, runner).catch(() => undefined);
    throw err;
  }
}

/** Stops a guest: the VF goes home to its host, then the stop hooks release the lease. */
export async function stopGuest(opts: SimOptions, name: string, runner: Runner): Promise<void> {
  const rec = JSON.parse(await readFile(recordPath(opts, name), 'utf8').catch(() => 'null')) as GuestRecord | null;
  const netns = guestNetns(opts, name);
  if (rec) {
    const host = hostOf(opts, rec.host);
    if ((await listNetns(runner)).includes(netns)) {
      // The VF must leave before the netns goes: deleting a netns destroys the veths inside it.
      if (rec.vfDev)
        await runner
          .run({ argv: ['ip', '-n', netns, 'link', 'set', 'dev', rec.vfDev, 'netns', host.netns] })
          .catch(() => undefined);
      await runner.run({ argv: ['ip', 'netns', 'del', netns] });
    }
    const xml = domainXml(rec, rec.uuid);
    await runHook(host, name, ['stopped', 'end'], xml);
    await runHook(host, name, ['release', 'end'], xml);
    await rm(recordPath(opts, name), { force: true });
  } else if ((await listNetns(runner)).includes(netns)) {
    await runner.run({ argv: ['ip', 'netns', 'del', netns] });
  }
}

// VFWIRE_SIM_HOOK=inprocess (the kernel lab, where each Node start costs seconds under TCG):
// the same dispatch, called in this process instead of through the hook script.
async function runHook(host: SimHost, vm: string, [op, sub]: [string, string], xml: string): Promise<void> {
  if (process.env.VFWIRE_SIM_HOOK === 'inprocess') {
    const out = await (await import('../hook/invoke.js')).runHookCall({ vm, op, subOp: sub, xml }, host.configPath);
    if (out.code !== 0) throw new VfwireError(`hook ${op}/${sub} refused: vfwire: ${out.line ?? `exit ${out.code}`}`);
    return;
  }
  const res = await callHook(host.configPath, vm, op, sub, xml);
  if (res.code !== 0)
    throw new VfwireError(`hook ${op}/${sub} refused: ${(res.stderr || res.stdout || `exit ${res.code}`).trim()}`);
}

function domainXml(spec: GuestSpec, uuid: string): string {
  const attrs = [
    `vni="${spec.vni}"`,
    spec.encrypt ? `encrypt="${spec.encrypt}"` : '',
    spec.mtu ? `mtu="${spec.mtu}"` : '',
  ]
    .filter(Boolean)
    .join(' ');
  return hookDomainXml(spec.name, uuid, [attrs]);
}

function guestUuid(opts: SimOptions, name: string): string {
  const h = createHash('sha256').update(`${opts.prefix}/${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

async function writeRecord(opts: SimOptions, rec: GuestRecord): Promise<void> {
  await mkdir(join(opts.dir, 'guests'), { recursive: true, mode: 0o700 });
  await writeFile(recordPath(opts, rec.name), JSON.stringify(rec) + '\n', { mode: 0o600 });
}

function recordPath(opts: SimOptions, name: string): string {
  return join(opts.dir, 'guests', `${name}.json`);
}

function hostOf(opts: SimOptions, id: 'a' | 'b'): SimHost {
  return simHosts(opts).find((h) => h.id === id)!;
}

function validateGuest(spec: GuestSpec): void {
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(spec.name))
    throw new ValidationError(`sim guest name "${spec.name}": use 1-20 of a-z 0-9 -, starting with a letter`);
  if (spec.host !== 'a' && spec.host !== 'b') throw new ValidationError(`sim guest ${spec.name}: host must be a or b`);
  const m = /^198\.(1[89])\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(spec.ip);
  if (!m || Number(m[2]) > 255 || Number(m[3]) > 255 || Number(m[4]) < 8 || Number(m[4]) > 30) {
    throw new ValidationError(
      `sim guest ${spec.name}: ip "${spec.ip}" must be an address with prefix length in 198.18.0.0/15 (e.g. 198.19.100.1/24)`,
    );
  }
  if (spec.ip.startsWith('198.18.0.'))
    throw new ValidationError(`sim guest ${spec.name}: 198.18.0.0/24 is the sim underlay; pick another subnet`);
}
