// One marker file per VM that holds a lease, beside the ledger: STATE_DIR/vms/<uuid>. The hook
// shim (hooks/qemu) asks it whether a VM's stop or daemon restart needs vfwire, without starting
// Node and without reading the ledger. So every save keeps the invariant "a VM with a lease has a
// marker": markers are written before the ledger that adds the lease and removed only after the
// ledger that drops it is on disk. A crash in between leaves a marker without a lease, which costs
// one Node start that finds nothing, never a lease the shim cannot see.
//
// A marker's content says what the `started` hook does: `attach` when one of the VM's leases
// becomes a device of the running VM (the shim spawns the attach worker), empty otherwise.
// The directory itself appears at once, whole (built aside and renamed), the first time a locked
// transaction finds it missing: until then the shim cannot trust it and starts Node.

import { mkdir, open, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { VfwireError } from '../errors.js';
import { LOWER_UUID_RE } from '../identifiers.js';
import { needsLiveAttach, type LedgerData } from './types.js';

const MARKER_DIR = 'vms';

export function markerDir(stateDir: string): string {
  return path.join(stateDir, MARKER_DIR);
}

/** uuid -> marker content, for every VM that holds a lease in `data`. */
function wanted(data: LedgerData): Map<string, string> {
  const out = new Map<string, string>();
  for (const lease of Object.values(data.leases)) {
    // The schema checks it on load and save; a file name it must be, never a path.
    if (!LOWER_UUID_RE.test(lease.uuid)) throw new VfwireError(`lease ${lease.key}: uuid is not a lower-case UUID`);
    // `attach` once any lease of the VM needs a live attach.
    if (out.get(lease.uuid) !== 'attach\n') out.set(lease.uuid, needsLiveAttach(lease) ? 'attach\n' : '');
  }
  return out;
}

async function present(dir: string): Promise<Set<string> | undefined> {
  try {
    return new Set((await readdir(dir)).filter((f) => !f.startsWith('.')));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new VfwireError(`cannot read the VM markers in ${dir}`, { cause: err });
  }
}

async function writeMarkers(dir: string, markers: [string, string][]): Promise<void> {
  for (const [uuid, content] of markers) await writeFile(path.join(dir, uuid), content, { mode: 0o600 });
  if (markers.length === 0) return;
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/**
 * Under the ledger lock, after loading: builds the marker directory from `data` when it is
 * missing (a ledger from before markers, or a first start).
 */
export async function ensureMarkers(stateDir: string, data: LedgerData): Promise<void> {
  const dir = markerDir(stateDir);
  if ((await present(dir)) !== undefined) return;
  const aside = `${dir}.new`;
  try {
    await rm(aside, { recursive: true, force: true });
    await mkdir(aside, { mode: 0o700 });
    await writeMarkers(aside, [...wanted(data)]);
    await rename(aside, dir);
  } catch (err) {
    throw new VfwireError(`cannot create the VM markers in ${dir}`, { cause: err });
  }
}

/** Before the ledger holding `data` is written: a marker for each VM that gains its first lease. */
export async function addMarkers(stateDir: string, data: LedgerData): Promise<void> {
  const dir = markerDir(stateDir);
  const have = (await present(dir)) ?? new Set<string>();
  try {
    await writeMarkers(
      dir,
      [...wanted(data)].filter(([uuid]) => !have.has(uuid)),
    );
  } catch (err) {
    throw new VfwireError(`cannot write a VM marker in ${dir}`, { cause: err });
  }
}

/**
 * After the ledger holding `data` is on disk: the markers of VMs left without a lease. Best
 * effort: the ledger is saved already, and a marker left behind costs one Node start, which
 * finds nothing; the next save tries again.
 */
export async function dropMarkers(stateDir: string, data: LedgerData): Promise<void> {
  const dir = markerDir(stateDir);
  const keep = wanted(data);
  const have = await present(dir).catch(() => undefined);
  for (const uuid of have ?? []) if (!keep.has(uuid)) await unlink(path.join(dir, uuid)).catch(() => undefined);
}
