// The per-VM markers hooks/qemu reads instead of the ledger: one per VM holding a lease, written
// before the ledger that adds the lease and removed after the one that drops it.

import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLedger, withLedger } from '../../src/ledger/store.js';
import { markerDir } from '../../src/ledger/vm-markers.js';
import { testLease } from '../helpers/inputs.js';
import { rejection } from '../helpers/rejection.js';

const U = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;

describe('VM markers beside the ledger', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vfwt-markers-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const markers = () => readdirSync(markerDir(dir)).sort();
  const lease = (n: number, i = 0, attach: 'netns' | 'hostdev' = 'netns') =>
    testLease(`${U(n)}/${i}`, `vm${n}`, { uuid: U(n), index: i, vf: n * 2 + i, attach });

  async function put(...leases: ReturnType<typeof lease>[]): Promise<void> {
    await withLedger(dir, async (txn) => {
      for (const l of leases) {
        txn.data.leases[l.key] = l;
        const v = (txn.data.vnis[String(l.vni)] ??= { vni: l.vni, members: [], peers: [], undo: [] });
        v.members.push(l.key);
      }
      await txn.save();
    });
  }
  async function drop(...keys: string[]): Promise<void> {
    await withLedger(dir, async (txn) => {
      for (const k of keys) {
        delete txn.data.leases[k];
        for (const v of Object.values(txn.data.vnis)) v.members = v.members.filter((m) => m !== k);
      }
      await txn.save();
    });
  }

  it('one marker per VM with a lease, 0600 in a 0700 directory; it says whether `started` attaches', async () => {
    await put(lease(1), lease(1, 1), lease(2, 0, 'hostdev'));
    expect(markers()).to.deep.equal([U(1), U(2)]);
    expect(readFileSync(join(markerDir(dir), U(1)), 'utf8')).to.equal('');
    expect(readFileSync(join(markerDir(dir), U(2)), 'utf8')).to.equal('attach\n');
    expect(statSync(join(markerDir(dir), U(2))).mode & 0o777).to.equal(0o600);
    expect(statSync(markerDir(dir)).mode & 0o777).to.equal(0o700);
  });

  it("a VM's marker goes with its last lease, not before", async () => {
    await put(lease(1), lease(1, 1), lease(2));
    await drop(`${U(1)}/0`);
    expect(markers()).to.deep.equal([U(1), U(2)]);
    await drop(`${U(1)}/1`);
    expect(markers()).to.deep.equal([U(2)]);
  });

  it('a ledger from before markers gets its whole directory at the first locked transaction', async () => {
    await put(lease(1), lease(2));
    rmSync(markerDir(dir), { recursive: true });
    await withLedger(dir, async () => undefined);
    expect(markers()).to.deep.equal([U(1), U(2)]);
    expect(existsSync(`${markerDir(dir)}.new`), 'the directory built aside').to.equal(false);
  });

  it('a ledger write that fails half-way leaves a marker without a lease, never a lease without one', async () => {
    const failing = withLedger(
      dir,
      async (txn) => {
        const l = lease(3);
        txn.data.leases[l.key] = l;
        txn.data.vnis['100'] = { vni: 100, members: [l.key], peers: [], undo: [] };
        await txn.save();
      },
      {
        onTmpfile: () => {
          throw new Error('ENOSPC (injected)');
        },
      },
    );
    expect((await rejection(failing)).message).to.match(
      /cannot write .*ledger\.json; the previous ledger is unchanged/,
    );
    expect(Object.keys((await readLedger(dir)).leases)).to.deep.equal([]);
    expect(markers()).to.deep.equal([U(3)]);
    // The next save with no lease for it takes the stale marker away.
    await put(lease(4));
    expect(markers()).to.deep.equal([U(4)]);
  });

  it('refuses a lease whose UUID is not one (a marker is a file name, never a path)', async () => {
    const bad = testLease('../../etc/x/0', 'bad', { uuid: '../../etc/x' });
    expect((await rejection(put(bad))).message).to.match(/uuid: must be a lower-case UUID/);
    expect(markers()).to.deep.equal([]);
  });
});
