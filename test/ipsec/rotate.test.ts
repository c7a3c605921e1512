// `vfwire ipsec rotate`: make-before-break to the next key epoch, one step at a time. This kernel
// cannot install ESP SAs (no AES-GCM), so the steps are checked as exact plans (--dry-run) from
// recorded states, with every refusal, and a real step fails in the kernel leaving nothing used.

import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { keyFilePath, readKeyFile } from '../../src/ipsec/keys.js';
import { peerSas } from '../../src/ipsec/render-static.js';
import { hex32 } from '../../src/ipsec/sa-ids.js';
import { readLedger, withLedger } from '../../src/ledger/store.js';
import type { PeerSaState } from '../../src/ledger/types.js';
import { vfwire } from '../helpers/cli.js';
import { downTestSim, upTestSim, type TestSim } from '../helpers/sim.js';

describe('ipsec rotate (static keys)', function () {
  this.timeout(60_000);
  let sim: TestSim | undefined;
  const cfg = () => sim!.a.configPath;
  const keyDir = () => join(sim!.a.dir, 'keys');
  const state = () => join(sim!.a.dir, 'state');
  const ns = () => sim!.a.netns;
  const rotate = (...args: string[]) => vfwire(['--config', cfg(), 'ipsec', 'rotate', '--peer', 'sim-b', ...args]);
  const facts = async () => peerSas({ local: '198.18.0.1', peer: '198.18.0.2', keys: await readKeyFile(keyFilePath(keyDir(), 'sim-b')) }).map(({ dir, src, dst, spi, reqid }) => ({ dir, src, dst, spi, reqid }));
  const setPeer = (p: PeerSaState) => withLedger(state(), async (txn) => {
    (txn.data.ipsec ??= { peers: {}, used: [] }).peers['sim-b'] = p;
    await txn.save();
  });

  before(async () => {
    sim = await upTestSim(1);
    const doc = parse(readFileSync(cfg(), 'utf8'));
    doc.ipsec = { mode: 'static', key_dir: keyDir() };
    writeFileSync(cfg(), stringify(doc));
    expect((await vfwire(['--config', cfg(), 'ipsec', 'keygen', '--peer', 'sim-b'])).code).to.equal(0);
  });
  after(() => downTestSim(sim));

  let old: Awaited<ReturnType<typeof facts>>;
  it('refuses while the peer is not up, and while the key file has not moved on', async () => {
    expect((await rotate('--dry-run')).stderr).to.include('peer sim-b is not up (vfwire ipsec up)');
    old = await facts();
    await setPeer({ epoch: 1, sas: old, installedAt: new Date().toISOString(), undo: [] });
    expect((await rotate('--dry-run')).stderr).to.include('the key file of sim-b has epoch 1, the SAs 1: make the next key first');
    expect((await rotate('--commit', '--dry-run')).stderr).to.include('no rotation of sim-b to the key file\'s epoch 1 under way');
  });

  it('step 1 adds the new inbound SA only; the old ones stay', async () => {
    expect((await vfwire(['--config', cfg(), 'ipsec', 'keygen', '--peer', 'sim-b', '--force'])).code).to.equal(0);
    const next = await facts();
    expect(next.map((s) => s.reqid)).to.deep.equal(old.map((s) => s.reqid));
    const r = await rotate('--dry-run');
    expect(r.code, r.stderr).to.equal(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(new RegExp(`^ip -n ${ns()} -batch - <<< 'xfrm state add src 198\\.18\\.0\\.2 dst 198\\.18\\.0\\.1 proto esp spi ${hex32(next[1]!.spi)} .* <key> 128 .* dir in .*replay-window 64'$`));
    expect((await rotate('--finish', '--dry-run')).stderr).to.include('no rotation of sim-b');
  });

  it('step 2 sends with the new key: new outbound SA, old outbound deleted', async () => {
    const next = await facts();
    await setPeer({ epoch: 1, sas: old, installedAt: new Date().toISOString(), undo: [], rotating: { epoch: 2, phase: 'receiving', sas: next.filter((s) => s.dir === 'in') } });
    expect((await rotate('--dry-run')).stderr).to.include('already rotating to epoch 2 (next: --commit)');
    expect((await rotate('--finish', '--dry-run')).stderr).to.include('does not send with epoch 2 yet');
    const lines = (await rotate('--commit', '--dry-run')).stdout.trim().split('\n');
    expect(lines[0]).to.match(new RegExp(`xfrm state add src 198\\.18\\.0\\.1 dst 198\\.18\\.0\\.2 proto esp spi ${hex32(next[0]!.spi)} .* dir out .*replay-window 0'$`));
    expect(lines[1]).to.equal(`ip -n ${ns()} xfrm state delete src 198.18.0.1 dst 198.18.0.2 proto esp spi ${hex32(old[0]!.spi)}`);
  });

  it('step 3 drops the old inbound SA', async () => {
    await setPeer({ epoch: 1, sas: old, installedAt: new Date().toISOString(), undo: [], rotating: { epoch: 2, phase: 'sending', sas: await facts() } });
    expect((await rotate('--finish', '--dry-run')).stdout.trim()).to.equal(`ip -n ${ns()} xfrm state delete src 198.18.0.2 dst 198.18.0.1 proto esp spi ${hex32(old[1]!.spi)}`);
  });

  it('ipsec watch notices SAs the kernel does not have, and says how to recover with static keys', async () => {
    await setPeer({ epoch: 1, sas: old, installedAt: new Date().toISOString(), undo: [] });
    const r = await vfwire(['--config', cfg(), 'ipsec', 'watch', '--once']);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.include(`sim-b: lost out ${hex32(old[0]!.spi)}, in ${hex32(old[1]!.spi)}: static keys cannot be reinstalled (AES-GCM nonces would repeat)`);
    expect(readFileSync(join(sim!.a.dir, 'log/vfwire.log'), 'utf8')).to.include('ipsec watch: SAs lost');
  });

  it('a real step 1 fails in this kernel and leaves the new key unused', async () => {
    await setPeer({ epoch: 1, sas: old, installedAt: new Date().toISOString(), undo: [] });
    const r = await rotate();
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/failed to xfrm-state-in/);
    const ledger = await readLedger(state());
    expect(ledger.ipsec!.used).to.deep.equal([]);
    expect(ledger.ipsec!.peers['sim-b']!.rotating).to.equal(undefined);
    expect(r.stdout + r.stderr).not.to.match(/[0-9a-f]{40}/);
  });
});
