// The lease ledger on disk: one JSON file per host, one host-wide lock around every change.
//
// Writers go through withLedger(): lock, load and validate, run the caller, write only what it
// save()s, unlock. The lock is proper-lockfile's (an mkdir'ed directory whose mtime a timer keeps
// fresh; one older than STALE_MS belongs to a dead process and is taken over). Writes are
// write-file-atomic's (temp file, fsync, rename), so a reader never sees half a file and a failed
// write leaves the previous ledger in place. That is also why readLedger() needs no lock.

import { chmod, mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import writeFileAtomic from 'write-file-atomic';
import { ResourceError, VfwireError } from '../errors.js';
import { decodeLedger, describeIssues, ledgerSchema, REPAIR_HINT } from './schema.js';
import { emptyLedger, type LedgerData } from './types.js';
import { addMarkers, dropMarkers, ensureMarkers } from './vm-markers.js';

const LEDGER_FILE = 'ledger.json';
const LOCK_FILE = 'ledger.lock';

const DEFAULT_TIMEOUT_MS = 60_000;
/** A lock not refreshed for this long is stale: its holder died (the config's lock_stale_ms). */
const STALE_MS = 10_000;
// How often a holder refreshes its lock: proper-lockfile's shortest, whatever the staleness, so
// that processes of configs that disagree on lock_stale_ms (one edited while a hook holds the
// lock) never see a live holder's lock as stale.
const REFRESH_MS = 1000;

export interface LedgerTxn {
  readonly data: LedgerData;
  save(): Promise<void>;
}

export interface LedgerOptions {
  /** How long to wait for another vfwire process to release the lock. */
  timeoutMs?: number;
  /** When a dead holder's lock is taken over (default 10 s; proper-lockfile's floor is 2000 ms). */
  staleMs?: number;
  /**
   * Internal, for tests: called by write-file-atomic once the temp file exists, before it is
   * written, fsync'ed and renamed over ledger.json. A throw here is a write failing half-way,
   * as ENOSPC or EIO would.
   */
  onTmpfile?: (tmpfile: string) => void | Promise<void>;
}

export function ledgerPaths(stateDir: string): { file: string; lock: string } {
  return { file: path.join(stateDir, LEDGER_FILE), lock: path.join(stateDir, LOCK_FILE) };
}

/**
 * Runs fn holding the host-wide lock; fn mutates txn.data and calls save() when it wants the
 * state on disk (it may save several times, e.g. a 'preparing' lease before running commands,
 * then the final state). Nothing is written unless save() is called. Lock released always.
 */
export async function withLedger<T>(
  stateDir: string,
  fn: (txn: LedgerTxn) => Promise<T>,
  opts: LedgerOptions = {},
): Promise<T> {
  const { file, lock } = ledgerPaths(stateDir);
  await ensureStateDir(stateDir);

  let lost: Error | undefined;
  const release = await acquire(file, lock, opts, (err) => {
    // proper-lockfile's default rethrows from a timer, which would kill the process mid-way
    // through the caller's commands. Remember it instead; the next save() refuses.
    lost = err;
  });

  let open = true;
  try {
    // Loaded under the lock: a refused file throws here, before fn can save over it.
    const data = await loadLedger(file);
    await ensureMarkers(stateDir, data);
    const txn: LedgerTxn = {
      data,
      async save() {
        if (!open) throw new VfwireError(`${file}: save() called after the ledger transaction ended`);
        if (lost) {
          throw new ResourceError(`lost the ledger lock, not saving (another process may have taken it): ${lock}`, {
            cause: lost,
          });
        }
        // Checked first: neither a ledger nor a marker named from one vfwire would refuse to
        // load must reach the disk. A VM's marker exists whenever the ledger on disk gives it a
        // lease (vm-markers.ts).
        checkLedger(file, data);
        await addMarkers(stateDir, data);
        await writeLedger(file, data, opts.onTmpfile);
        await dropMarkers(stateDir, data);
      },
    };
    return await fn(txn);
  } finally {
    open = false;
    // Once compromised, proper-lockfile has already dropped the lock and release() rejects
    // with ERELEASED. Any other release failure (the rmdir failed) is not worth masking the
    // result for: the lock stops being refreshed and goes stale within STALE_MS.
    await release().catch(() => undefined);
  }
}

/** Lock-free read for status/plan (atomic writes make this consistent). Missing file → emptyLedger(). */
export async function readLedger(stateDir: string): Promise<LedgerData> {
  return loadLedger(ledgerPaths(stateDir).file);
}

async function ensureStateDir(stateDir: string): Promise<void> {
  // mode is filtered by the umask; chmod the directory we created so it is 0700 regardless.
  // An existing directory keeps whatever mode the operator gave it.
  const created = await mkdir(stateDir, { recursive: true, mode: 0o700 });
  if (created !== undefined) await chmod(stateDir, 0o700);
}

async function acquire(
  file: string,
  lock: string,
  opts: LedgerOptions,
  onCompromised: (err: Error) => void,
): Promise<() => Promise<void>> {
  const timeoutMs = Math.max(0, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const started = Date.now();
  try {
    return await lockfile.lock(file, {
      lockfilePath: lock,
      realpath: false, // ledger.json may not exist yet
      stale: opts.staleMs ?? STALE_MS,
      update: REFRESH_MS,
      onCompromised,
      // retry's maxRetryTime is checked after each failed attempt, so keep the backoff short
      // enough not to overshoot the timeout by much. maxRetryTime 0 would mean "forever".
      // Waiters poll (an mkdir each): a backoff that grows to half a second leaves the lock idle
      // between holders, which is what 64 VMs started at once paid for; 50 ms keeps the handoff
      // short at the cost of at most 20 mkdir calls a second per waiter.
      retries:
        timeoutMs === 0
          ? 0
          : {
              forever: true,
              maxRetryTime: timeoutMs,
              factor: 1.5,
              minTimeout: 10,
              maxTimeout: Math.max(10, Math.min(50, timeoutMs / 4)),
              randomize: true,
            },
    });
  } catch (err) {
    if (isLockedError(err)) {
      const waited = Number(((Date.now() - started) / 1000).toFixed(1));
      throw new ResourceError(`ledger is locked by another vfwire process (waited ${waited}s): ${lock}`, {
        cause: err,
      });
    }
    throw new VfwireError(`cannot lock the ledger: ${lock}`, { cause: err });
  }
}

function isLockedError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // proper-lockfile reports the most frequent error of all attempts: normally ELOCKED, but it
  // can be retry's own timeout error when the deadline passes on the first retry.
  return (err as NodeJS.ErrnoException).code === 'ELOCKED' || err.message === 'RetryOperation timeout occurred';
}

async function loadLedger(file: string): Promise<LedgerData> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyLedger();
    throw new VfwireError(`cannot read ${file}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new VfwireError(`${file} is not valid JSON (${(err as Error).message}); ${REPAIR_HINT}`, { cause: err });
  }
  return decodeLedger(raw, file);
}

function checkLedger(file: string, data: LedgerData): void {
  const checked = ledgerSchema.safeParse(data);
  if (!checked.success) {
    throw new VfwireError(`refusing to save an invalid ledger to ${file}: ${describeIssues(checked.error)}`);
  }
}

async function writeLedger(file: string, data: LedgerData, onTmpfile: LedgerOptions['onTmpfile']): Promise<void> {
  try {
    // write-file-atomic v7: (filename, data, options) => Promise<void>. mode is applied with an
    // explicit chmod of the temp file, so it is 0600 whatever the umask.
    await writeFileAtomic(file, JSON.stringify(data, null, 2) + '\n', {
      mode: 0o600,
      fsync: true,
      ...(onTmpfile && { tmpfileCreated: onTmpfile }),
    });
  } catch (err) {
    throw new VfwireError(`cannot write ${file}; the previous ledger is unchanged`, { cause: err });
  }
  // write-file-atomic fsyncs the file but not the directory; without this a crash right after
  // the rename can bring back the previous ledger, forgetting undo commands already run.
  try {
    const dir = await open(path.dirname(file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (err) {
    throw new VfwireError(`wrote ${file} but could not fsync its directory`, { cause: err });
  }
}
