// The hook as libvirt runs it, on a sim host: refusals, pool exhaustion, rollback at every
// step, idempotent release, and operations that must be refused or must never fail.

import { expect } from 'chai';
import { testLease } from '../helpers/inputs.js';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { execa } from 'execa';
import { join } from 'node:path';
import { readLedger, withLedger } from '../../src/ledger/store.js';
import { dropLeases } from '../../src/ledger/record.js';
import { loadConfig } from '../../src/config/config.js';
import { gcNoDomains } from '../helpers/gc.js';
import { domainXml, runHook } from '../helpers/hook.js';
import { HOOK_LIFECYCLE, HOOK_SCRIPT } from '../../src/sim/hook-call.js';
import { waitFor } from '../../src/wait.js';
import {
  configVariant,
  downTestSim,
  expectNoVfwireOn,
  guardedPorts,
  leasesOn,
  links,
  runner as simRunner,
  upTestSim,
  type TestSim,
} from '../helpers/sim.js';

const U = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;
const OFF = 'vni="100" encrypt="off"';

describe('hook on a sim host', function () {
  this.timeout(120_000);
  let sim: TestSim | undefined;
  let cfg: string;
  const stateDir = () => join(sim!.a.dir, 'state');

  before(async () => {
    sim = await upTestSim(2);
    cfg = sim.a.configPath;
  });
  after(() => downTestSim(sim));

  /** Nothing of vfwire's is left on host A (no lease, no vfw* link, no bridge member), and no ledger lock. */
  async function expectClean(): Promise<void> {
    await expectNoVfwireOn(sim!.a);
    expect(existsSync(join(stateDir(), 'ledger.lock')), 'lock').to.equal(false);
  }

  it('an untagged VM starts and stops with no vfwire trace', async () => {
    for (const [op, sub] of HOOK_LIFECYCLE) {
      expect(await runHook(cfg, 'plain', op, sub, domainXml('plain', U(1)))).to.deep.equal({ code: 0, stderr: '' });
    }
    expect(existsSync(stateDir()), 'state dir').to.equal(false);
  });

  it('a VM named like an option is never read as one', async () => {
    const r = await runHook(cfg, '-h', 'prepare', 'begin', domainXml('-h', U(4), ['vni="0"']));
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^vfwire: vm "-h": interface 0: vni: /);
  });

  it('invalid metadata refuses the start with one line naming the VM and field', async () => {
    const r = await runHook(cfg, 'bad vm', 'prepare', 'begin', domainXml('bad vm', U(2), ['vni="0"']));
    expect(r.code).to.equal(1);
    expect(r.stderr.split('\n')).to.have.length(1);
    expect(r.stderr).to.match(/^vfwire: vm "bad vm": interface 0: vni: /);
  });

  it('fails closed: encrypt=required without IPsec to the peer is refused', async () => {
    const r = await runHook(cfg, 'sec', 'prepare', 'begin', domainXml('sec', U(3), ['vni="100"']));
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^vfwire: vm sec: interface 0: encrypt: required, but VNI 100 reaches peer\(s\) sim-b/);
    await expectClean();
  });

  it('a pool of 2 VFs serves two VMs and refuses the third; nothing leaks', async () => {
    for (const n of [10, 11])
      expect((await runHook(cfg, `vm${n}`, 'prepare', 'begin', domainXml(`vm${n}`, U(n), [OFF]))).code).to.equal(0);
    const third = await runHook(cfg, 'vm12', 'prepare', 'begin', domainXml('vm12', U(12), [OFF]));
    expect(third.code).to.equal(1);
    expect(third.stderr).to.match(/^vfwire: vm vm12: interface 0: no free VF on enp3s0f0np0 \(2 usable, all leased/);
    expect(await leasesOn(sim!.a)).to.have.length(2);
    for (const n of [10, 11, 12])
      for (const op of ['stopped', 'release'])
        expect((await runHook(cfg, `vm${n}`, op, 'end', domainXml(`vm${n}`, U(n), [OFF]))).code).to.equal(0);
    await expectClean();
  });

  it('parallel starts never share a VF: 6 VMs at once on a pool of 2', async () => {
    const names = [60, 61, 62, 63, 64, 65];
    const runs = await Promise.all(
      names.map((n) => runHook(cfg, `par${n}`, 'prepare', 'begin', domainXml(`par${n}`, U(n), [OFF]))),
    );
    expect(runs.filter((r) => r.code === 0)).to.have.length(2);
    for (const r of runs.filter((x) => x.code !== 0)) expect(r.stderr).to.match(/no free VF/);
    const leases = await leasesOn(sim!.a);
    expect(new Set(leases.map((l) => l.vf)).size).to.equal(2);
    expect((await readLedger(stateDir())).vnis['100']!.members).to.have.length(2);
    await Promise.all(names.map((n) => runHook(cfg, `par${n}`, 'release', 'end', domainXml(`par${n}`, U(n), [OFF]))));
    await expectClean();
  });

  it('rolls back completely when any prepare step fails, under the ledger lock or after it', async () => {
    // The first lease of a VNI with one peer (test/fixtures/plans/sim-first-lease.txt): steps 0-6
    // make the VNI under the lock, 7 and 8 (the VF, its representor's join) run after it.
    const steps = 9;
    let k = 0;
    for (; k <= steps; k++) {
      const r = await runHook(cfg, 'flaky', 'prepare', 'begin', domainXml('flaky', U(20), [OFF]), {
        VFWIRE_TEST_FAIL_STEP: String(k),
      });
      // An injected failure past the last step never fires: the start went through.
      if (r.code === 0) break;
      expect(r.code, `step ${k}`).to.equal(1);
      expect(r.stderr, `step ${k}`).to.match(/^vfwire: vm flaky: failed to [a-z-]+ .*injected failure/);
      await expectClean();
    }
    expect(k, 'steps failed one by one before a start went through').to.equal(steps);
    expect((await runHook(cfg, 'flaky', 'release', 'end', domainXml('flaky', U(20), [OFF]))).code).to.equal(0);
    await expectClean();
  });

  it("a start's own last steps run after the ledger lock: a start hung there keeps no other start waiting", async () => {
    // Step 8 of a VNI's first lease is its representor's join, the lease's own (plan/unlocked-steps.ts).
    const quickLock = configVariant(cfg, 'lock-5s.yaml', { lock_timeout_ms: 5000 });
    const slow = execa(HOOK_SCRIPT, ['slow', 'prepare', 'begin', '-'], {
      input: domainXml('slow', U(30), [OFF]),
      env: { VFWIRE_CONFIG: quickLock, VFWIRE_TEST_HANG_STEP: '8' },
      reject: false,
    });
    try {
      let said = '';
      slow.stderr!.on('data', (d: Buffer) => (said += d.toString()));
      await waitFor('the first start to hang at its last step', async () =>
        said.includes('injected hang before command 8') ? true : undefined,
      );
      const quick = await runHook(quickLock, 'quick', 'prepare', 'begin', domainXml('quick', U(31), [OFF]));
      expect(quick.code, quick.stderr).to.equal(0);
      expect(slow.exitCode, 'the first start still hangs').to.equal(null);
    } finally {
      // The shim's `| exec node` runs node in a pipeline child: kill that process, as a crash would.
      await execa('pkill', ['-KILL', '-f', 'hook-main.js -- slow prepare'], { reject: false });
      await slow;
    }
    // libvirt releases a start that failed; the VNI and the other VM's lease stay.
    expect((await runHook(cfg, 'slow', 'release', 'end', domainXml('slow', U(30), [OFF]))).code).to.equal(0);
    const [left, ...more] = await leasesOn(sim!.a);
    expect(more).to.deep.equal([]);
    expect(left).to.include({ vm: 'quick', state: 'active' });
    expect((await links(sim!.a.netns)).get(left!.rep)?.master).to.equal('vfwbr100');
    expect((await runHook(cfg, 'quick', 'release', 'end', domainXml('quick', U(31), [OFF]))).code).to.equal(0);
    await expectClean();
  });

  it("gc takes what a lost lease left: its VNI's devices and chains, and its guard elements", async () => {
    const xml = domainXml('lost', U(40), [OFF]);
    expect((await runHook(cfg, 'lost', 'prepare', 'begin', xml)).code).to.equal(0);
    const { rep, mac } = (await leasesOn(sim!.a))[0]!;
    expect(await guardedPorts(sim!.a.netns)).to.deep.equal([rep]);
    // The ledger loses the lease (a state directory restored from an old backup, say).
    await withLedger(stateDir(), async (txn) => {
      dropLeases(txn.data, Object.keys(txn.data.leases));
      await txn.save();
    });
    const gc = async () => gcNoDomains(await loadConfig(cfg), simRunner);
    const said = await gc();
    expect(said, said.join('\n')).to.include.members([
      `leftover guard: ${rep} may send as ${mac}, which no lease holds`,
      `leftover guard: representor ${rep} guarded, but no lease holds it`,
    ]);
    expect(said.at(-1)).to.match(/^released 0 lease\(s\), removed \d+ leftover\(s\)$/);
    await expectClean();
    expect(await gc()).to.deep.equal(['nothing to collect']);
    // The VF goes to the next VM, guarded by its own MAC alone.
    expect((await runHook(cfg, 'next', 'prepare', 'begin', domainXml('next', U(41), [OFF]))).code).to.equal(0);
    expect((await runHook(cfg, 'next', 'release', 'end', domainXml('next', U(41), [OFF]))).code).to.equal(0);
    await expectClean();
  });

  it('release before prepare and release twice are no-ops that succeed', async () => {
    const xml = domainXml('twice', U(30), [OFF]);
    expect((await runHook(cfg, 'twice', 'release', 'end', xml)).code).to.equal(0);
    expect((await runHook(cfg, 'twice', 'prepare', 'begin', xml)).code).to.equal(0);
    for (let i = 0; i < 2; i++) expect((await runHook(cfg, 'twice', 'release', 'end', xml)).code).to.equal(0);
    await expectClean();
  });

  it('releases by UUID even when the metadata became invalid meanwhile', async () => {
    expect((await runHook(cfg, 'edited', 'prepare', 'begin', domainXml('edited', U(31), [OFF]))).code).to.equal(0);
    expect((await runHook(cfg, 'edited', 'release', 'end', domainXml('edited', U(31), ['vni="nope"']))).code).to.equal(
      0,
    );
    await expectClean();
  });

  it('releases by UUID when the live XML lost its metadata altogether', async () => {
    expect((await runHook(cfg, 'stripped', 'prepare', 'begin', domainXml('stripped', U(33), [OFF]))).code).to.equal(0);
    expect((await runHook(cfg, 'stripped', 'stopped', 'end', domainXml('stripped', U(33)))).code).to.equal(0);
    expect((await runHook(cfg, 'stripped', 'release', 'end', domainXml('stripped', U(33)))).code).to.equal(0);
    await expectClean();
  });

  it('a second prepare of a running VM replaces its stale leases instead of leaking them', async () => {
    const xml = domainXml('again', U(32), [OFF]);
    for (let i = 0; i < 2; i++) expect((await runHook(cfg, 'again', 'prepare', 'begin', xml)).code).to.equal(0);
    expect(await leasesOn(sim!.a)).to.have.length(1);
    expect((await runHook(cfg, 'again', 'release', 'end', xml)).code).to.equal(0);
    await expectClean();
  });

  it('forgets leases of an earlier boot without replaying their undo', async () => {
    const canary = 'vfwtcanary';
    await simRunner.run({ argv: ['ip', '-n', sim!.a.netns, 'link', 'add', canary, 'type', 'bridge'] });
    const old = `${U(70)}/0`;
    await withLedger(stateDir(), async (txn) => {
      txn.data.bootId = 'a-boot-long-ago';
      txn.data.leases[old] = testLease(old, 'ghost', {
        mac: '52:54:00:00:00:70',
        since: '2020-01-01T00:00:00Z',
        attach: 'ethernet',
        undo: [{ argv: ['ip', '-n', sim!.a.netns, 'link', 'del', canary] }],
        uuid: U(70),
      });
      txn.data.vnis['100'] = { vni: 100, members: [old], peers: [], undo: [] };
      await txn.save();
    });
    expect((await runHook(cfg, 'fresh', 'prepare', 'begin', domainXml('fresh', U(71), [OFF]))).code).to.equal(0);
    expect((await leasesOn(sim!.a)).map((l) => [l.vm, l.vf])).to.deep.equal([['fresh', 0]]);
    expect((await links(sim!.a.netns)).has(canary), 'the stale undo did not run').to.equal(true);
    await simRunner.run({ argv: ['ip', '-n', sim!.a.netns, 'link', 'del', canary] });
    expect((await runHook(cfg, 'fresh', 'release', 'end', domainXml('fresh', U(71), [OFF]))).code).to.equal(0);
    await expectClean();
  });

  it('a full state disk refuses the start and keeps the old ledger intact', async () => {
    // A tiny tmpfs over the state dir, with a valid ledger on it, then filled to the last byte.
    const xml = domainXml('full', U(80), [OFF]);
    mkdirSync(stateDir(), { recursive: true });
    await simRunner.run({ argv: ['mount', '-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', stateDir()] });
    try {
      expect((await runHook(cfg, 'seed', 'prepare', 'begin', domainXml('seed', U(81), [OFF]))).code).to.equal(0);
      const before = readFileSync(join(stateDir(), 'ledger.json'), 'utf8');
      await simRunner
        .run({ argv: ['dd', 'if=/dev/zero', `of=${join(stateDir(), 'filler')}`, 'bs=4k', 'count=64'] })
        .catch(() => undefined);
      const r = await runHook(cfg, 'full', 'prepare', 'begin', xml);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/^vfwire: .*(ENOSPC|no space left)/i);
      expect(readFileSync(join(stateDir(), 'ledger.json'), 'utf8')).to.equal(before);
      expect((await leasesOn(sim!.a)).map((l) => l.vm)).to.deep.equal(['seed']);
      rmSync(join(stateDir(), 'filler'));
      expect((await runHook(cfg, 'seed', 'release', 'end', domainXml('seed', U(81), [OFF]))).code).to.equal(0);
      await expectClean();
    } finally {
      await simRunner.run({ argv: ['umount', stateDir()] }).catch(() => undefined);
    }
  });

  it('refuses migrate and restore of a VM with a VF', async () => {
    for (const op of ['migrate', 'restore']) {
      const r = await runHook(cfg, 'mover', op, 'begin', domainXml('mover', U(40), [OFF]));
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(new RegExp(`^vfwire: vm mover: ${op} of a VM with a vfwire VF is not supported`));
    }
  });

  it('reconnect keeps the leases and never fails, even on garbage', async () => {
    const xml = domainXml('kept', U(50), [OFF]);
    expect((await runHook(cfg, 'kept', 'prepare', 'begin', xml)).code).to.equal(0);
    expect((await runHook(cfg, 'kept', 'reconnect', 'begin', xml)).code).to.equal(0);
    expect((await leasesOn(sim!.a)).map((l) => l.vm)).to.deep.equal(['kept']);
    expect(
      (await runHook(cfg, 'kept', 'reconnect', 'begin', `<domain xmlns:v="${'https://vfwire.dev/xmlns/1.0'}"><oops`))
        .code,
    ).to.equal(0);
    expect((await runHook(cfg, 'kept', 'release', 'end', xml)).code).to.equal(0);
    await expectClean();
  });
});
