// One competing vfwire process for the concurrency test in store.test.ts:
//   node dist/test/ledger/lease-worker.js <stateDir> <poolSize> <id>
// Inside one transaction it picks the lowest VF of a pool of poolSize that no lease holds,
// records it as 'preparing', works a little, marks it 'active', and prints the VF number.
// Exits 3 printing `no free VF` when the pool is full. The pauses between reading and saving
// widen the window a missing or broken lock would let two workers pick the same VF in.

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { withLedger, type LedgerTxn } from '../../src/ledger/store.js';
import { leaseKey, type Lease } from '../../src/ledger/types.js';

// `mocha dist/test/ledger` loads every file in the directory, this one included: only run
// when started as a script.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}

async function main([stateDir, poolArg, id]: string[]): Promise<number> {
  const poolSize = Number(poolArg);
  if (stateDir === undefined || id === undefined || !Number.isInteger(poolSize) || poolSize < 1) {
    console.error('usage: lease-worker <stateDir> <poolSize> <id>');
    return 2;
  }
  try {
    const vf = await withLedger(stateDir, (txn) => lease(txn, poolSize, id));
    console.log(vf === undefined ? 'no free VF' : String(vf));
    return vf === undefined ? 3 : 0;
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 1;
  }
}

async function lease(txn: LedgerTxn, poolSize: number, id: string): Promise<number | undefined> {
  const used = new Set(Object.values(txn.data.leases).map((l) => l.vf));
  let vf = 0;
  while (vf < poolSize && used.has(vf)) vf++;
  if (vf === poolSize) return undefined;

  await sleep(2 + Math.floor(Math.random() * 4));
  const uuid = randomUUID();
  const entry: Lease = {
    key: leaseKey(uuid, 0),
    vm: `worker-${id}`,
    uuid,
    index: 0,
    pf: 'enp59s0f0np0',
    vf,
    // ConnectX VFs start at function 2 of the PF's slot and spill into the next devices.
    pci: `0000:3b:${hex2(Math.floor((vf + 2) / 8))}.${(vf + 2) % 8}`,
    rep: `enp59s0f0r${vf}`,
    vni: 100,
    mac: `52:54:00:00:${hex2(vf >> 8)}:${hex2(vf & 0xff)}`,
    mtu: 1500,
    since: new Date().toISOString(),
    state: 'preparing',
    attach: 'hostdev',
    undo: [],
  };
  txn.data.leases[entry.key] = entry;
  (txn.data.vnis['100'] ??= { vni: 100, members: [], peers: [], undo: [] }).members.push(entry.key);
  await txn.save();

  await sleep(1 + Math.floor(Math.random() * 3));
  entry.undo.push({ argv: ['ip', 'link', 'set', 'enp59s0f0np0', 'vf', String(vf), 'vlan', '0'] });
  entry.state = 'active';
  await txn.save();
  return vf;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
