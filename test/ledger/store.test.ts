import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ResourceError, VfwireError } from '../../src/errors.js';
import { rejection } from '../helpers/rejection.js';
import { ledgerPaths, readLedger, withLedger } from '../../src/ledger/store.js';
import { emptyLedger, LEDGER_SCHEMA, leaseKey, type Lease, type LedgerData } from '../../src/ledger/types.js';

const WORKER = fileURLToPath(new URL('./lease-worker.js', import.meta.url));

describe('ledger store', () => {
  let tmp: string;
  let stateDir: string;
  let file: string;
  let lock: string;

  beforeEach(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'vfwire-ledger-'));
    stateDir = path.join(tmp, 'state', 'vfwire');
    ({ file, lock } = ledgerPaths(stateDir));
  });

  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  describe('load and save', () => {
    it('reads a missing file as an empty ledger', async () => {
      expect(await readLedger(stateDir)).to.deep.equal(emptyLedger());
      const seen = await withLedger(stateDir, async (txn) => txn.data);
      expect(seen).to.deep.equal(emptyLedger());
    });

    it('round-trips a saved ledger', async () => {
      const written = ledgerWith(lease('web1', 3));
      written.vnis['100'] = { vni: 100, members: [leaseKey(UUID, 0)], peers: ['192.168.80.3'], undo: [] };
      await withLedger(stateDir, async (txn) => {
        Object.assign(txn.data, structuredClone(written));
        await txn.save();
      });
      expect(await readLedger(stateDir)).to.deep.equal(written);
      expect(await withLedger(stateDir, async (txn) => txn.data)).to.deep.equal(written);
      expect(await readFile(file, 'utf8')).to.equal(JSON.stringify(written, null, 2) + '\n');
    });

    it('keeps every save of a transaction, the last one winning', async () => {
      await withLedger(stateDir, async (txn) => {
        const l = lease('web1', 3);
        addLease(txn.data, l);
        await txn.save();
        expect((await readLedger(stateDir)).leases[l.key]?.state).to.equal('preparing');
        l.state = 'active';
        await txn.save();
      });
      expect((await readLedger(stateDir)).leases[leaseKey(UUID, 0)]?.state).to.equal('active');
    });

    it('creates the state dir 0700 and the file 0600', async () => {
      const oldUmask = process.umask(0); // modes must not depend on the umask
      try {
        await withLedger(stateDir, async (txn) => txn.save());
      } finally {
        process.umask(oldUmask);
      }
      expect((await stat(stateDir)).mode & 0o777).to.equal(0o700);
      expect((await stat(file)).mode & 0o777).to.equal(0o600);
    });

    it('writes nothing unless save() is called', async () => {
      await withLedger(stateDir, async (txn) => {
        const l = lease('web1', 1);
        addLease(txn.data, l);
      });
      expect(await exists(file)).to.equal(false);

      await seed(ledgerWith(lease('web1', 1)));
      const before = await readFile(file, 'utf8');
      await withLedger(stateDir, async (txn) => {
        txn.data.leases = {};
      });
      expect(await readFile(file, 'utf8')).to.equal(before);
    });

    it('releases the lock and writes nothing when fn throws', async () => {
      await seed(ledgerWith(lease('web1', 1)));
      const before = await readFile(file, 'utf8');
      const boom = new Error('boom');
      const err = await rejection(
        withLedger(stateDir, async (txn) => {
          txn.data.leases = {};
          throw boom;
        }),
      );
      expect(err).to.equal(boom);
      expect(await readFile(file, 'utf8')).to.equal(before);
      expect(await exists(lock)).to.equal(false);
      await withLedger(stateDir, async () => undefined, { timeoutMs: 300 });
    });

    it('refuses to save data that it would refuse to load', async () => {
      const err = await rejection(
        withLedger(stateDir, async (txn) => {
          const l = lease('web1', 1);
          txn.data.leases['wrong-key'] = l;
          await txn.save();
        }),
      );
      expect(err).to.be.instanceOf(VfwireError);
      expect(err.message).to.contain('refusing to save').and.contain('wrong-key');
      expect(await exists(file)).to.equal(false);
    });

    it('refuses save() after the transaction ended', async () => {
      let saveLater: (() => Promise<void>) | undefined;
      await withLedger(stateDir, async (txn) => {
        saveLater = () => txn.save();
      });
      const err = await rejection(saveLater!());
      expect(err.message).to.contain('after the ledger transaction ended');
      expect(await exists(file)).to.equal(false);
    });
  });

  describe('refusing a ledger it cannot read', () => {
    async function expectRefused(content: string, ...fragments: string[]): Promise<void> {
      await writeFile(file, content, { mode: 0o600 });
      let called = false;
      const err = await rejection(
        withLedger(stateDir, async (txn) => {
          called = true;
          await txn.save();
        }),
      );
      expect(err).to.be.instanceOf(VfwireError);
      for (const fragment of [file, ...fragments]) expect(err.message).to.contain(fragment);
      expect(called, 'fn must not run on a refused ledger').to.equal(false);
      expect(await readFile(file, 'utf8')).to.equal(content);
      expect(await exists(lock)).to.equal(false);
      expect((await rejection(readLedger(stateDir))).message).to.equal(err.message);
    }

    beforeEach(async () => {
      await withLedger(stateDir, async () => undefined); // creates the state dir
    });

    it('refuses a ledger from a newer vfwire', async () => {
      const newer = { ...emptyLedger(), schema: LEDGER_SCHEMA + 1, somethingNew: {} };
      await expectRefused(JSON.stringify(newer), 'newer vfwire', `schema ${LEDGER_SCHEMA + 1}`);
    });

    it('refuses corrupt JSON and leaves the file alone', async () => {
      await expectRefused('{"schema": 1, "leases": {', 'not valid JSON', 'vfwire gc');
    });

    it('refuses a ledger that does not match the schema, naming the field', async () => {
      const bad = ledgerWith(lease('web1', 1)) as unknown as { leases: Record<string, Record<string, unknown>> };
      const entry = bad.leases[leaseKey(UUID, 0)]!;
      entry.vf = 'one';
      entry.secretKey = '0xdeadbeef';
      await expectRefused(JSON.stringify(bad), `leases.${leaseKey(UUID, 0)}.vf`, 'secretKey', 'vfwire gc');
    });

    it('refuses a lease filed under the wrong key', async () => {
      const l = lease('web1', 1);
      const bad = { ...emptyLedger(), leases: { other: l } };
      await expectRefused(JSON.stringify(bad), 'filed under "other"');
    });
  });

  describe('locking', () => {
    it('times out with a ResourceError naming the lock', async () => {
      let holderDone: () => void = () => undefined;
      const holding = new Promise<void>((resolve) => (holderDone = resolve));
      let locked: () => void = () => undefined;
      const isLocked = new Promise<void>((resolve) => (locked = resolve));
      const holder = withLedger(stateDir, async () => {
        locked();
        await holding;
      });
      await isLocked;

      const started = Date.now();
      const err = await rejection(withLedger(stateDir, async () => 'never', { timeoutMs: 300 }));
      const waited = Date.now() - started;
      holderDone();
      await holder;

      expect(err).to.be.instanceOf(ResourceError);
      expect(err.message).to.match(/^ledger is locked by another vfwire process \(waited \d+(\.\d)?s\): /);
      expect(err.message).to.contain(lock);
      expect(waited).to.be.within(250, 1500);
      // and once released, the lock is free again
      expect(await withLedger(stateDir, async () => 'free', { timeoutMs: 300 })).to.equal('free');
    });

    it('waits for the holder instead of failing when the timeout allows', async () => {
      const order: string[] = [];
      const first = withLedger(stateDir, async () => {
        order.push('first in');
        await sleep(200);
        order.push('first out');
      });
      await sleep(20);
      await withLedger(stateDir, async () => void order.push('second'), { timeoutMs: 5000 });
      await first;
      expect(order).to.deep.equal(['first in', 'first out', 'second']);
    });

    it('fails the next save, without crashing, when the lock is taken away', async function () {
      this.timeout(10_000);
      // Removing the lock directory is what another process does when it judges the lock
      // stale; proper-lockfile notices on its next refresh (staleMs / 2 = 1 s here).
      const err = await rejection(
        withLedger(
          stateDir,
          async (txn) => {
            await rm(lock, { recursive: true });
            await sleep(1500);
            await txn.save();
          },
          { staleMs: 2000 },
        ),
      );
      expect(err).to.be.instanceOf(ResourceError);
      expect(err.message).to.contain('lost the ledger lock').and.contain(lock);
      expect(await exists(file)).to.equal(false);
      await withLedger(stateDir, async () => undefined, { timeoutMs: 300 });
    });
  });

  describe('a lock whose holder died', () => {
    it('is taken over once it is staleMs old, and not before', async function () {
      this.timeout(10_000);
      // What a holder killed with SIGKILL leaves: the lock directory, no longer refreshed.
      await mkdir(lock, { recursive: true });
      const t0 = Date.now();
      await withLedger(stateDir, async () => undefined, { staleMs: 2000, timeoutMs: 6000 });
      expect(Date.now() - t0).to.be.within(1900, 5000);
    });

    it("is never a live holder's: it refreshes every second, whatever staleness its own config says", async function () {
      this.timeout(10_000);
      const holder = withLedger(stateDir, () => sleep(3500), { staleMs: 60_000 });
      await sleep(100);
      const err = await rejection(withLedger(stateDir, async () => undefined, { staleMs: 2000, timeoutMs: 3000 }));
      expect(err.message).to.match(/lock/);
      await holder;
    });
  });

  describe('failed writes', () => {
    it('keeps the previous ledger intact when a write fails half-way', async () => {
      const old = ledgerWith(lease('web1', 1));
      await seed(old);
      const before = await readFile(file, 'utf8');

      // The test runs as root, so permissions cannot make the write fail, and a full or
      // read-only filesystem needs a mount. Instead the failure is injected into the real
      // write-file-atomic call at the point ENOSPC/EIO would hit: the temp file exists and
      // has partial content, and the rename over ledger.json has not happened.
      let tmpfile = '';
      const err = await rejection(
        withLedger(
          stateDir,
          async (txn) => {
            txn.data.leases = {};
            txn.data.vnis = {};
            await txn.save();
          },
          {
            onTmpfile: async (name) => {
              tmpfile = name;
              await writeFile(name, '{"schema": 1, "lea');
              throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
            },
          },
        ),
      );

      expect(err).to.be.instanceOf(VfwireError);
      expect(err.message).to.contain(`cannot write ${file}`);
      expect((err.cause as NodeJS.ErrnoException).code).to.equal('ENOSPC');
      expect(path.dirname(tmpfile)).to.equal(stateDir);
      expect(await readFile(file, 'utf8')).to.equal(before);
      expect(await readLedger(stateDir)).to.deep.equal(old);
      expect(await readdir(stateDir), 'temp file cleaned up, lock released').to.deep.equal(['ledger.json', 'vms']);
    });
  });

  describe('concurrency', function () {
    this.timeout(30_000);

    it('32 processes at once each get a distinct VF from a pool of 64', async () => {
      const results = await runWorkers(32, 64);
      const vfs = results.map((r) => {
        expect(r.code, r.stderr).to.equal(0);
        return Number(r.stdout.trim());
      });
      expect(new Set(vfs).size).to.equal(32);
      expect(vfs.every((vf) => Number.isInteger(vf) && vf >= 0 && vf < 64)).to.equal(true);
      // lowest free first, so together they took exactly 0..31
      expect([...vfs].sort((a, b) => a - b)).to.deep.equal([...Array(32).keys()]);

      const leases = Object.values((await readLedger(stateDir)).leases);
      expect(leases).to.have.length(32);
      expect(new Set(leases.map((l) => l.vf)).size).to.equal(32);
      expect(leases.every((l) => l.state === 'active')).to.equal(true);
    });

    it('32 processes at once on a pool of 16: 16 leases, 16 told no free VF', async () => {
      const results = await runWorkers(32, 16);
      const won = results.filter((r) => r.code === 0).map((r) => Number(r.stdout.trim()));
      const lost = results.filter((r) => r.code === 3);
      expect(won).to.have.length(16);
      expect(new Set(won).size).to.equal(16);
      expect(lost).to.have.length(16);
      for (const r of lost) expect(r.stdout.trim()).to.equal('no free VF');

      const leases = Object.values((await readLedger(stateDir)).leases);
      expect(leases).to.have.length(16);
      expect(new Set(leases.map((l) => l.vf))).to.deep.equal(new Set(won));
    });

    interface WorkerResult {
      code: number | null;
      stdout: string;
      stderr: string;
    }

    function runWorkers(count: number, poolSize: number): Promise<WorkerResult[]> {
      return Promise.all(
        Array.from(
          { length: count },
          (_, id) =>
            new Promise<WorkerResult>((resolve, reject) => {
              const child = spawn(process.execPath, [WORKER, stateDir, String(poolSize), String(id)]);
              let stdout = '';
              let stderr = '';
              child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
              child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
              child.on('error', reject);
              child.on('close', (code) => resolve({ code, stdout, stderr }));
            }),
        ),
      );
    }
  });

  async function seed(data: LedgerData): Promise<void> {
    await withLedger(stateDir, async (txn) => {
      Object.assign(txn.data, structuredClone(data));
      await txn.save();
    });
  }
});

const UUID = '3f2a6c1e-8d4b-4e0a-9c7d-2b1f5e6a7c80';

function lease(vm: string, vf: number, uuid = UUID, index = 0): Lease {
  return {
    key: leaseKey(uuid, index),
    vm,
    uuid,
    index,
    pf: 'enp59s0f0np0',
    vf,
    pci: `0000:3b:00.${vf + 2}`,
    vfDev: `enp59s0f0v${vf}`,
    rep: `enp59s0f0r${vf}`,
    vni: 100,
    mac: '52:54:00:12:34:56',
    mtu: 1500,
    since: '2025-01-01T00:00:00.000Z',
    state: 'preparing',
    attach: 'hostdev',
    undo: [{ argv: ['ip', 'link', 'set', 'enp59s0f0np0', 'vf', String(vf), 'vlan', '0'] }],
  };
}

function ledgerWith(...leases: Lease[]): LedgerData {
  const data = emptyLedger();
  for (const l of leases) addLease(data, l);
  return data;
}

/** A lease with its VNI membership, as the ledger's invariants require. */
function addLease(data: LedgerData, l: Lease): void {
  data.leases[l.key] = l;
  (data.vnis[String(l.vni)] ??= { vni: l.vni, members: [], peers: [], undo: [] }).members.push(l.key);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
