// `vfwire ipsec rotate`: make-before-break to a new key file, one step at a time. This kernel
// cannot install ESP SAs (no AES-GCM), so the steps are checked as exact plans (--dry-run) from
// recorded states, with every refusal, and a real step fails in the kernel leaving nothing used.

import { expect } from 'chai';
import { join } from 'node:path';
import { configPath, loadConfig } from '../../src/config/config.js';
import { epochKeys, keyFilePath, readKeyFile, type PeerSeed } from '../../src/ipsec/keys.js';
import { pairContext, planUp, saFacts, type PairContext } from '../../src/ipsec/pair-plan.js';
import { CURRENT_FORM } from '../helpers/xfrm-forms.js';
import { peerSas } from '../../src/ipsec/render-static.js';
import { hex32 } from '../../src/ipsec/sa-ids.js';
import { readLedger, withLedger } from '../../src/ledger/store.js';
import type { PeerSaState } from '../../src/ledger/types.js';
import { vfwire } from '../helpers/cli.js';
import { downTestSim, editConfig, upTestSim, type TestSim } from '../helpers/sim.js';

describe('ipsec rotate (static keys)', function () {
  this.timeout(60_000);
  let sim: TestSim | undefined;
  let ctx: PairContext;
  const cfg = () => sim!.a.configPath;
  const keyDir = () => join(sim!.a.dir, 'keys');
  const state = () => join(sim!.a.dir, 'state');
  const ns = () => sim!.a.netns;
  const rotate = (...args: string[]) => vfwire(['--config', cfg(), 'ipsec', 'rotate', '--peer', 'sim-b', ...args]);
  const seed = () => readKeyFile(keyFilePath(keyDir(), 'sim-b'));
  const sasOf = (s: PeerSeed, epoch: number) => peerSas({ ...ctx, keys: epochKeys(s, epoch, [ctx.local, ctx.peer]) });
  const setPeer = (p: PeerSaState) =>
    withLedger(state(), async (txn) => {
      (txn.data.ipsec ??= { peers: {}, used: [] }).peers['sim-b'] = p;
      await txn.save();
    });

  before(async () => {
    sim = await upTestSim(1);
    editConfig(cfg(), (doc) => {
      doc.ipsec = { mode: 'static', key_dir: keyDir(), offload: 'none' };
    });
    expect((await vfwire(['--config', cfg(), 'ipsec', 'keygen', '--peer', 'sim-b'])).code).to.equal(0);
    const c = await loadConfig(configPath(cfg()));
    ctx = pairContext(c, c.peers[0]!, CURRENT_FORM);
  });
  after(() => downTestSim(sim));

  let oldSeed: PeerSeed;
  let up: PeerSaState;
  it('refuses while the peer is not up, and while the key file is the key in use', async () => {
    expect((await rotate('--dry-run')).stderr).to.include('peer sim-b is not up (vfwire ipsec up)');
    oldSeed = await seed();
    up = planUp(ctx, oldSeed, 4).next;
    await setPeer(up);
    expect((await rotate('--dry-run')).stderr).to.include(
      `the key file of sim-b is the key in use (${oldSeed.id}): make the next key first`,
    );
    expect((await rotate('--commit', '--dry-run')).stderr).to.include("no rotation of sim-b to its key file's key");
  });

  it("step 1 adds the new key's inbound SA only; the old ones stay", async () => {
    expect((await vfwire(['--config', cfg(), 'ipsec', 'keygen', '--peer', 'sim-b', '--force'])).code).to.equal(0);
    const [, newIn] = sasOf(await seed(), 1);
    expect(newIn.reqid).to.equal(up.sas[1]!.reqid);
    const r = await rotate('--dry-run');
    expect(r.code, r.stderr).to.equal(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(
      new RegExp(
        `^ip -n ${ns()} -batch - <<< 'xfrm state add src 198\\.18\\.0\\.2 dst 198\\.18\\.0\\.1 proto esp spi ${hex32(newIn.spi)} .* <key> 128 sel .*replay-window 64'$`,
      ),
    );
    expect((await rotate('--finish', '--dry-run')).stderr).to.include('no rotation of sim-b');
  });

  it('step 2 sends with the new key: new outbound SA, old outbound deleted', async () => {
    const s = await seed();
    const [out, inb] = sasOf(s, 1);
    await setPeer({ ...up, rotating: { key: s.id, epoch: 1, phase: 'receiving', sas: [saFacts(inb)] } });
    expect((await rotate('--dry-run')).stderr).to.include(`already rotating to key ${s.id} (next: --commit)`);
    expect((await rotate('--finish', '--dry-run')).stderr).to.include('does not send with the new key yet');
    const lines = (await rotate('--commit', '--dry-run')).stdout.trim().split('\n');
    expect(lines[0]).to.match(
      new RegExp(
        `xfrm state add src 198\\.18\\.0\\.1 dst 198\\.18\\.0\\.2 proto esp spi ${hex32(out.spi)} .* sel .*replay-window 64'$`,
      ),
    );
    expect(lines[1]).to.equal(
      `ip -n ${ns()} xfrm state delete src 198.18.0.1 dst 198.18.0.2 proto esp spi ${hex32(up.sas[0]!.spi)}`,
    );
  });

  it("step 3 drops the old key's inbound SAs and installs the new key's next epochs ahead", async () => {
    const s = await seed();
    const facts = sasOf(s, 1).map(saFacts);
    await setPeer({ ...up, rotating: { key: s.id, epoch: 1, phase: 'sending', sas: facts } });
    const lines = (await rotate('--finish', '--dry-run')).stdout.trim().split('\n');
    for (const [i, epoch] of [2, 3].entries()) {
      expect(lines[i]).to.match(
        new RegExp(
          `xfrm state add src 198\\.18\\.0\\.2 dst 198\\.18\\.0\\.1 proto esp spi ${hex32(sasOf(s, epoch)[1].spi)} .* sel `,
        ),
      );
    }
    expect(lines.slice(2)).to.deep.equal(
      [up.sas[1]!, ...up.lookahead!].map(
        (sa) => `ip -n ${ns()} xfrm state delete src 198.18.0.2 dst 198.18.0.1 proto esp spi ${hex32(sa.spi)}`,
      ),
    );
  });

  it('a real step 1 fails in this kernel and leaves the new key unused', async () => {
    await setPeer(up);
    const r = await rotate();
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/failed to xfrm-state-in/);
    const ledger = await readLedger(state());
    expect(ledger.ipsec!.used).to.deep.equal([]);
    expect(ledger.ipsec!.peers['sim-b']!.rotating).to.equal(undefined);
    expect(r.stdout + r.stderr).not.to.match(/[0-9a-f]{40}/);
  });
});
