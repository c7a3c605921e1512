// Two hosts keep static-key IPsec going through SA losses, each running only `ipsec watch`
// rounds: a host that lost its SAs moves to a fresh epoch, its peer follows. This machine has no
// ESP, so FakeXfrm (test/helpers) plays the two kernels and the wire; up, watch, the ledger, the
// key file and the nonce guard are vfwire's own. Every scenario ends with traffic both ways and no
// outbound SA ever installed twice.

import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { configPath, loadConfig, type Config } from '../../src/config/config.js';
import { generateSeed, keyFilePath, readKeyFile, writeKeyFile } from '../../src/ipsec/keys.js';
import { pairContext, peerBehind, planRecover } from '../../src/ipsec/pair-plan.js';
import { CURRENT_FORM } from '../helpers/xfrm-forms.js';
import { ipsecUp } from '../../src/ipsec/static-sas.js';
import { watchOnce, type WatchFinding } from '../../src/ipsec/watch.js';
import { readLedger, withLedger } from '../../src/ledger/store.js';
import { closeLogger, createLogger, type Logger } from '../../src/log.js';
import { FakeXfrm } from '../helpers/fake-xfrm.js';

const HOSTS = [
  { id: 'a', ns: 'fx-a', address: '198.18.0.1', peer: 'fx-b', peerAddress: '198.18.0.2' },
  { id: 'b', ns: 'fx-b', address: '198.18.0.2', peer: 'fx-a', peerAddress: '198.18.0.1' },
] as const;

describe('static IPsec: a pair recovers from lost SAs by moving to a fresh epoch', function () {
  this.timeout(30_000);
  let dir = '';
  let kernel: FakeXfrm;
  const cfg: Record<'a' | 'b', Config> = {} as never;
  let log: Logger;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vfwt-epoch-'));
    const seed = generateSeed();
    for (const h of HOSTS) {
      const hostDir = join(dir, h.id);
      mkdirSync(join(hostDir, 'keys'), { recursive: true, mode: 0o700 });
      const file = join(hostDir, 'vfwire.yaml');
      writeFileSync(
        file,
        stringify({
          backend: 'sim',
          netns: h.ns,
          sysfs_root: join(hostDir, 'sys'),
          state_dir: join(hostDir, 'state'),
          log_dir: join(hostDir, 'log'),
          underlay: { interface: 'p0', address: h.address },
          pfs: [{ name: 'p0' }],
          peers: [{ name: h.peer, address: h.peerAddress }],
          ipsec: { mode: 'static', key_dir: join(hostDir, 'keys') },
        }),
        { mode: 0o600 },
      );
      cfg[h.id] = await loadConfig(configPath(file));
      await writeKeyFile(keyFilePath(join(hostDir, 'keys'), h.peer), h.peer, seed);
    }
    log = createLogger(join(dir, 'log'), 'test');
  });
  after(async () => {
    await closeLogger(log);
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    kernel = new FakeXfrm();
    for (const h of HOSTS) {
      kernel.addHost(h.ns, h.address);
      rmSync(join(dir, h.id, 'state'), { recursive: true, force: true });
      const up = await ipsecUp({ cfg: cfg[h.id], runner: kernel.runner(), log }, {});
      expect(up).to.deep.equal([{ peer: h.peer, result: 'up (epoch 1)' }]);
    }
    expectTraffic();
    // One watch round each: both hear the other on epoch 1 (the steady state).
    expect(await settle()).to.equal(1);
    for (const id of ['a', 'b'] as const)
      expect((await readLedger(cfg[id].stateDir)).ipsec!.peers[HOSTS.find((h) => h.id === id)!.peer]).to.include({
        confirmed: 1,
      });
  });

  const watch = (id: 'a' | 'b'): Promise<WatchFinding[]> => watchOnce(cfg[id], kernel.runner(), log);
  const epoch = async (id: 'a' | 'b') =>
    (await readLedger(cfg[id].stateDir)).ipsec!.peers[HOSTS.find((h) => h.id === id)!.peer]!.epoch;
  function expectTraffic(): void {
    expect(kernel.send('fx-a'), 'a -> b').to.equal(true);
    expect(kernel.send('fx-b'), 'b -> a').to.equal(true);
  }
  function expectNoOutboundTwice(): void {
    for (const h of HOSTS)
      expect(new Set(kernel.outAdds(h.ns)).size, `${h.id}: an outbound SA installed twice`).to.equal(
        kernel.outAdds(h.ns).length,
      );
  }
  /** Watch rounds on both hosts until a round finds nothing; returns how many it took. */
  async function settle(max = 6): Promise<number> {
    for (let round = 1; round <= max; round++) {
      const found = [...(await watch('a')), ...(await watch('b'))];
      expect(
        found.filter((f) => !f.recovered),
        JSON.stringify(found),
      ).to.deep.equal([]);
      if (found.length === 0) return round;
    }
    throw new Error(`no steady state after ${max} rounds`);
  }

  it('a host that lost its SAs moves to epoch 2 and kicks; its peer follows; traffic flows both ways', async () => {
    kernel.flush('fx-a');
    expect(kernel.send('fx-b'), 'a lost everything').to.equal(false);
    const [moved] = await watch('a');
    expect(moved).to.include({ peer: 'fx-b', recovered: true });
    expect(moved!.lost).to.have.members([
      ...moved!.lost.filter((l) => /^(out|in) 0x/.test(l)),
      'policy out',
      'policy in',
    ]);
    expect(moved!.action).to.match(
      /^moved to epoch 2 \(fresh keys; out 0x[0-9a-f]{8}, in 0x[0-9a-f]{8}\); the peer follows$/,
    );
    expect(kernel.send('fx-a'), 'b already receives epoch 2 (its lookahead)').to.equal(true);
    const [followed] = await watch('b');
    expect(followed).to.include({ recovered: true, action: followed!.action });
    expect(followed!.lost).to.deep.equal([]);
    expect(followed!.action).to.match(/^the peer moved to epoch 2: followed/);
    expectTraffic();
    expect([await epoch('a'), await epoch('b')]).to.deep.equal([2, 2]);
    // a hears b on epoch 2: no more kicks owed.
    expect(await watch('a')).to.deep.equal([]);
    expect(peerBehind((await readLedger(cfg.a.stateDir)).ipsec!.peers['fx-b']!)).to.equal(false);
    expectNoOutboundTwice();
  });

  it('a read that failed is not a loss: the watch round fails and no epoch moves', async () => {
    kernel.getsTimeOut = true;
    try {
      const round = await watch('a').then(
        () => 'finished',
        (e: Error) => e.message,
      );
      expect(round).to.match(/timed out/);
    } finally {
      kernel.getsTimeOut = false;
    }
    expect([await epoch('a'), await epoch('b')]).to.deep.equal([1, 1]);
    expectTraffic();
  });

  it("the old epoch's inbound SA is never installed again (its replay window would start over)", async () => {
    const before = kernel.spis('fx-a', 'in');
    kernel.flush('fx-a');
    await settle();
    const epoch1In = before[0]!;
    expect(kernel.inAdds('fx-a').filter((spi) => spi === epoch1In)).to.have.length(1);
    expect(kernel.spis('fx-a', 'in')).not.to.include(epoch1In);
    expectTraffic();
  });

  it('both hosts lose their SAs at once: both move to the same next epoch', async () => {
    kernel.flush('fx-a');
    kernel.flush('fx-b');
    await settle();
    expect([await epoch('a'), await epoch('b')]).to.deep.equal([2, 2]);
    expectTraffic();
    expectNoOutboundTwice();
  });

  it('a second loss before the peer followed, every kick lost meanwhile: the pair still converges, two epochs on', async () => {
    kernel.wireDown = true;
    kernel.flush('fx-a');
    await watch('a');
    kernel.flush('fx-a');
    await watch('a');
    expect(await epoch('a')).to.equal(3);
    kernel.wireDown = false;
    await settle();
    expect([await epoch('a'), await epoch('b')]).to.deep.equal([3, 3]);
    expectTraffic();
    expectNoOutboundTwice();
  });

  it('a third loss before the peer followed is refused loudly: the peer could not receive that epoch', async () => {
    kernel.wireDown = true;
    for (let i = 0; i < 2; i++) {
      kernel.flush('fx-a');
      expect((await watch('a'))[0]).to.include({ recovered: true });
    }
    kernel.flush('fx-a');
    const [refused] = await watch('a');
    expect(refused).to.include({ recovered: false });
    expect(refused!.action).to.match(
      /moving to epoch 4 failed: epoch 4 is more than 2 past epoch 1, the last the peer was heard on/,
    );
    expect(await epoch('a')).to.equal(3);
    expectNoOutboundTwice();
  });

  it('a kick lost on the wire is sent again next round until the peer follows', async () => {
    kernel.flush('fx-a');
    kernel.wireDown = true;
    await watch('a');
    expect(await watch('b'), 'b saw nothing').to.deep.equal([]);
    kernel.wireDown = false;
    expect(await watch('a'), 'a kicks again, quietly').to.deep.equal([]);
    expect((await watch('b'))[0]!.action).to.match(/^the peer moved to epoch 2/);
    await settle();
    expectTraffic();
  });

  it('a peer that does not follow within a minute is reported (still kicked each round)', async () => {
    kernel.flush('fx-a');
    kernel.wireDown = true;
    await watch('a');
    expect(await watch('a'), 'within the minute: quiet').to.deep.equal([]);
    await withLedger(cfg.a.stateDir, async (txn) => {
      txn.data.ipsec!.peers['fx-b']!.installedAt = new Date(Date.now() - 120_000).toISOString();
      await txn.save();
    });
    const [late] = await watch('a');
    expect(late).to.include({ peer: 'fx-b', recovered: false });
    expect(late!.action).to.match(
      /^nothing received from fx-b on epoch 2 since .*: is vfwire ipsec watch running there\?/,
    );
    kernel.wireDown = false;
    await watch('a');
    expect((await watch('b'))[0]!.action).to.match(/^the peer moved to epoch 2/);
    await settle();
    expectTraffic();
  });

  it('records of an earlier boot are left to ipsec up: the watch installs nothing', async () => {
    await withLedger(cfg.a.stateDir, async (txn) => {
      txn.data.bootId = 'an-earlier-boot';
      await txn.save();
    });
    kernel.flush('fx-a');
    const [found] = await watch('a');
    expect(found).to.deep.equal({
      peer: 'fx-b',
      lost: [],
      action: 'recorded in an earlier boot: run vfwire ipsec up',
      recovered: false,
    });
    expect(kernel.spis('fx-a', 'out')).to.deep.equal([]);
  });

  it('a move the NIC refuses is reported, leaves the epoch unused, and succeeds next round', async () => {
    const state = (await readLedger(cfg.a.stateDir)).ipsec!;
    const seed = await readKeyFile(keyFilePath(cfg.a.ipsec.keyDir, 'fx-b'));
    kernel.failAdd = planRecover(
      pairContext(cfg.a, cfg.a.peers[0]!, CURRENT_FORM),
      seed,
      state.peers['fx-b']!,
      () => false,
      [],
    ).next.sas[0]!.spi;
    kernel.flush('fx-a');
    const [failed] = await watch('a');
    expect(failed).to.include({ recovered: false });
    expect(failed!.action).to.match(/^moving to epoch 2 failed: failed to xfrm-state-out/);
    expect((await readLedger(cfg.a.stateDir)).ipsec!.used).to.deep.equal(state.used);
    expect(await epoch('a')).to.equal(1);
    await settle();
    expect([await epoch('a'), await epoch('b')]).to.deep.equal([2, 2]);
    expectTraffic();
    expectNoOutboundTwice();
  });

  it('a restarted pair (ledgers kept, SAs gone) comes up on the next epoch with no new key', async () => {
    for (const h of HOSTS) {
      kernel.flush(h.ns);
      await withLedger(cfg[h.id].stateDir, async (txn) => {
        txn.data.ipsec!.peers = {};
        await txn.save();
      });
      expect(await ipsecUp({ cfg: cfg[h.id], runner: kernel.runner(), log }, {})).to.deep.equal([
        { peer: h.peer, result: 'up (epoch 2)' },
      ]);
    }
    expectTraffic();
    expectNoOutboundTwice();
  });
});
