// `vfwire ipsec` and encrypted starts on a sim host. This kernel cannot install an ESP SA (no
// AES-GCM), so an `ipsec up` that passes every vfwire check fails in the kernel: the tests
// check vfwire's refusals, its records, and that key bytes never reach output, errors or logs.

import { expect } from 'chai';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { epochKeys, readKeyFile } from '../../src/ipsec/keys.js';
import { guardId, pairContext, planUp } from '../../src/ipsec/pair-plan.js';
import { CURRENT_FORM } from '../helpers/xfrm-forms.js';
import { configPath, loadConfig } from '../../src/config/config.js';
import { peerSas } from '../../src/ipsec/render-static.js';
import { hex32 } from '../../src/ipsec/sa-ids.js';
import { readLedger, withLedger } from '../../src/ledger/store.js';
import { vfwire } from '../helpers/cli.js';
import { domainXml, runHook } from '../helpers/hook.js';
import { downTestSim, editConfig, upTestSim, type TestSim } from '../helpers/sim.js';

describe('ipsec on a sim host', function () {
  this.timeout(60_000);
  let sim: TestSim | undefined;
  let cfg = '';
  const keyDir = () => join(sim!.a.dir, 'keys');
  const keyFile = () => join(keyDir(), 'sim-b.key');
  const stateDir = () => join(sim!.a.dir, 'state');

  before(async () => {
    sim = await upTestSim(2);
    cfg = sim.a.configPath;
    editConfig(cfg, (doc) => {
      // The sim's veth cannot offload ESP: the kernel's own ESP is the sim's mode.
      doc.ipsec = { mode: 'static', key_dir: join(sim!.a.dir, 'keys'), offload: 'none' };
    });
  });
  after(() => downTestSim(sim));

  /** The key file's seed and the keys of its first epochs, to grep output and logs for. */
  function keyHex(): string[] {
    const seed = readFileSync(keyFile(), 'utf8').match(/0x([0-9a-f]{64})/)![1]!;
    const derived = [1, 2, 3].flatMap((e) => {
      const k = epochKeys({ seed: Buffer.from(seed, 'hex'), id: '' }, e, ['198.18.0.1', '198.18.0.2']);
      return [k.lowToHigh, k.highToLow].map((b) => b.toString('hex'));
    });
    return [seed, ...derived];
  }
  function expectNoKeys(...texts: string[]): void {
    const read = (dir: string) =>
      existsSync(dir)
        ? readdirSync(dir)
            .filter((f) => statSync(join(dir, f)).isFile())
            .map((f) => readFileSync(join(dir, f), 'utf8'))
        : [];
    const stored = [...read(join(sim!.a.dir, 'log')), ...read(stateDir())];
    for (const k of keyHex())
      for (const t of [...texts, ...stored]) expect(t.includes(k), 'key bytes leaked').to.equal(false);
  }

  it('keygen writes a 0600 key file and refuses to overwrite it without --force', async () => {
    const r = await vfwire(['--config', cfg, 'ipsec', 'keygen', '--peer', 'sim-b']);
    expect(r.code, r.stderr).to.equal(0);
    expect(statSync(keyFile()).mode & 0o777).to.equal(0o600);
    expect(statSync(keyDir()).mode & 0o777).to.equal(0o700);
    const { id } = await readKeyFile(keyFile());
    expect(r.stdout).to.include(`(key ${id})`);
    const again = await vfwire(['--config', cfg, 'ipsec', 'keygen', '--peer', 'sim-b']);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.include('exists; pass --force');
    expectNoKeys(r.stdout, again.stderr);
  });

  it('refuses a key file others can read, without printing it', async () => {
    chmodSync(keyFile(), 0o644);
    const r = await vfwire(['--config', cfg, 'ipsec', 'up', '--dry-run']);
    chmodSync(keyFile(), 0o600);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('must be owned by this user and 0600 (it is 644)');
    expectNoKeys(r.stdout, r.stderr);
  });

  it('--dry-run prints the exact commands with keys shown as <key>', async () => {
    const r = await vfwire(['--config', cfg, 'ipsec', 'up', '--dry-run']);
    expect(r.code, r.stderr).to.equal(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).to.have.length(6);
    expect(lines[0]).to.match(/xfrm state add src 198\.18\.0\.2 dst 198\.18\.0\.1 proto esp .* sel /);
    expect(lines[1], 'the next epochs received ahead').to.match(
      /xfrm state add src 198\.18\.0\.2 dst 198\.18\.0\.1 proto esp .* sel /,
    );
    expect(lines[2]).to.match(/xfrm state add src 198\.18\.0\.2 dst 198\.18\.0\.1 proto esp .* sel /);
    expect(lines[3]).to.match(/xfrm policy update .* dir out /);
    // The outbound SA last: a failure before it leaves its key unused.
    // Debian 12's iproute2 (6.1) knows no SA direction: the lab notes' form, a window on both SAs.
    expect(lines[5]).to.match(
      /^ip -n \S+ -batch - <<< 'xfrm state add src 198\.18\.0\.1 dst 198\.18\.0\.2 proto esp spi 0x[0-9a-f]{8} .* aead rfc4106\(gcm\(aes\)\) <key> 128 sel src 198\.18\.0\.1 dst 198\.18\.0\.2 flag esn replay-window 64'$/,
    );
    expect(r.stdout).not.to.include('offload');
    expectNoKeys(r.stdout, r.stderr);
  });

  it('packet offload with an iproute2 that cannot say it is refused before anything runs, in one line', async () => {
    editConfig(cfg, (doc) => {
      doc.ipsec!.offload = 'packet';
    });
    const r = await vfwire(['--config', cfg, 'ipsec', 'up'], { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' });
    editConfig(cfg, (doc) => {
      doc.ipsec!.offload = 'none';
    });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(
      "vfwire: ipsec.offload: iproute2 6.1 cannot say 'offload packet' (needs 6.2): apt-get install -t bookworm-backports iproute2",
    );
    expect((await readLedger(stateDir())).ipsec?.used ?? []).to.deep.equal([]);
  });

  it('up fails in this kernel without leaking keys, and does not count the key as used', async () => {
    const r = await vfwire(['--config', cfg, 'ipsec', 'up']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/failed to xfrm-state-in .*(AEAD|offload)/);
    expectNoKeys(r.stdout, r.stderr);
    const ledger = await readLedger(stateDir());
    expect(ledger.ipsec?.used).to.deep.equal([]);
    expect(ledger.ipsec?.peers).to.deep.equal({});
  });

  it('never installs an outbound SA used before: AES-GCM nonces would repeat', async () => {
    const seed = await readKeyFile(keyFile());
    const [out1] = peerSas({
      local: '198.18.0.1',
      peer: '198.18.0.2',
      keys: epochKeys(seed, 1, ['198.18.0.1', '198.18.0.2']),
    });
    await withLedger(stateDir(), async (txn) => {
      txn.data.ipsec = { peers: {}, used: [guardId(out1)] };
      await txn.save();
    });
    const again = await vfwire(['--config', cfg, 'ipsec', 'up', '--epoch', '1']);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.include(
      'epoch 1 of the key for peer sim-b was already used; installing it again would reuse AES-GCM nonces',
    );
    // Without --epoch, up takes the next epoch (as after a reboot): fresh keys, new SPIs.
    const [out2] = peerSas({
      local: '198.18.0.1',
      peer: '198.18.0.2',
      keys: epochKeys(seed, 2, ['198.18.0.1', '198.18.0.2']),
    });
    const plan = await vfwire(['--config', cfg, 'ipsec', 'up', '--dry-run']);
    expect(plan.stdout.trim().split('\n').at(-1)).to.include(`spi ${hex32(out2.spi)}`);
    const next = await vfwire(['--config', cfg, 'ipsec', 'up']);
    expect(next.stderr).not.to.include('already used');
    expect(next.stderr).to.match(/failed to xfrm-state-in .*spi 0x/);
    expect((await readLedger(stateDir())).ipsec?.used).to.deep.equal([guardId(out1)]);
    expect((await vfwire(['--config', cfg, 'ipsec', 'up', '--epoch', '0'])).stderr).to.include(
      "option '--epoch <n>' argument '0' is invalid",
    );
    expectNoKeys(again.stderr, plan.stdout, next.stderr);
  });

  it('a VM that requires encryption does not start while the SAs are down', async () => {
    editConfig(cfg, (doc) => {
      doc.ipsec!.offload = 'packet';
    });
    const r = await runHook(
      cfg,
      'secret',
      'prepare',
      'begin',
      domainXml('secret', '00000000-0000-4000-8000-0000000000e1', ['vni="100"']),
    );
    expect(r.code).to.equal(1);
    // The sim's veth has no ESP offload: refused before anything else.
    expect(r.stderr).to.match(/^vfwire: vm secret: encrypt: required, but enp3s0f0np0 has no ESP offload/);
  });

  it('with CPU crypto (offload: none), it still needs its SAs up and in the kernel', async () => {
    editConfig(cfg, (doc) => {
      doc.ipsec!.offload = 'none';
    });
    const xml = domainXml('secret', '00000000-0000-4000-8000-0000000000e1', ['vni="100"']);
    const down = await runHook(cfg, 'secret', 'prepare', 'begin', xml);
    expect(down.stderr).to.match(
      /interface 0: encrypt: required, but no IPsec SAs to sim-b are up \(run: vfwire ipsec up\)/,
    );
    // The ledger says up, but the kernel has no such SA (as after a link flap): still refused.
    await withLedger(stateDir(), async (txn) => {
      txn.data.ipsec!.peers['sim-b'] = {
        epoch: 9,
        sas: [{ dir: 'out', src: '198.18.0.1', dst: '198.18.0.2', spi: 0x1234, reqid: 1 }],
        installedAt: new Date().toISOString(),
        undo: [],
      };
      await txn.save();
    });
    const gone = await runHook(cfg, 'secret', 'prepare', 'begin', xml);
    expect(gone.code).to.equal(1);
    expect(gone.stderr).to.match(/failed to ipsec-check sim-b 198\.18\.0\.1->198\.18\.0\.2 spi 0x00001234/);
    expect(Object.keys((await readLedger(stateDir())).leases)).to.deep.equal([]);
  });

  it('ipsec watch moves a pair whose SAs are gone to the next epoch; here the kernel refuses, and nothing counts as used', async () => {
    const c = await loadConfig(configPath(cfg));
    const seed = await readKeyFile(keyFile());
    const up = planUp(pairContext(c, c.peers[0]!, CURRENT_FORM), seed, 5).next;
    await withLedger(stateDir(), async (txn) => {
      txn.data.ipsec = { peers: { 'sim-b': up }, used: [] };
      await txn.save();
    });
    const r = await vfwire(['--config', cfg, 'ipsec', 'watch', '--once']);
    expect(r.code).to.equal(1);
    const spis = [...up.sas, ...up.lookahead!].map((sa) => `${sa.dir} ${hex32(sa.spi)}`).join(', ');
    expect(r.stdout).to.include(
      `sim-b: lost ${spis}, policy out, policy in: moving to epoch 6 failed: failed to xfrm-state-in`,
    );
    const after = await readLedger(stateDir());
    expect(after.ipsec!.used).to.deep.equal([]);
    expect(after.ipsec!.peers['sim-b']!.epoch).to.equal(5);
    const logged = readFileSync(join(sim!.a.dir, 'log/vfwire.log'), 'utf8');
    expect(logged).to.include('ipsec watch: not in place');
    expectNoKeys(r.stdout, r.stderr);
  });
});
