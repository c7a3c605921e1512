// The hook's hot paths (issue 14): libvirt runs hooks/qemu five times for every start and stop
// of every VM, and waits each time. Run as installed (config and state directory pinned) with a
// PATH whose `node` records each call: an untagged VM starts no Node at all, a tagged one Node
// only for prepare and release, and `started` only the attach worker, and only when a lease needs
// a live attach.

import { expect } from 'chai';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLedger, withLedger } from '../../src/ledger/store.js';
import { markerDir } from '../../src/ledger/vm-markers.js';
import { HOOK_LIFECYCLE } from '../../src/sim/hook-call.js';
import { domainXml, runHook } from '../helpers/hook.js';
import { testLease } from '../helpers/inputs.js';
import { downTestSim, expectNoVfwireOn, upTestSim, type TestSim } from '../helpers/sim.js';

const U = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;
const OFF = 'vni="100" encrypt="off"';

describe('hook hot paths: which calls start Node', function () {
  this.timeout(120_000);
  let sim: TestSim | undefined;
  let cfg: string;
  let bin: string;
  let calls: string;
  const stateDir = () => join(sim!.a.dir, 'state');

  before(async () => {
    sim = await upTestSim(2);
    cfg = sim.a.configPath;
    bin = mkdtempSync(join(tmpdir(), 'vfwt-node-'));
    calls = join(bin, 'calls');
    // Records every start of `node`; the attach worker is only recorded (it would talk to libvirt).
    writeFileSync(
      join(bin, 'node'),
      `#!/bin/sh\nprintf '%s\\n' "$*" >> '${calls}'\ncase $1 in *attach-main.js) exit 0 ;; esac\nexec '${process.execPath}' "$@"\n`,
    );
    chmodSync(join(bin, 'node'), 0o755);
  });
  after(async () => {
    await downTestSim(sim);
    if (bin) rmSync(bin, { recursive: true, force: true });
  });
  beforeEach(() => rmSync(calls, { force: true }));

  const PATH = () => `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`;
  /** One hook call through the recording PATH; its exit code and stderr. */
  const call = (vm: string, op: string, sub: string, xml: string, env: Record<string, string> = {}) =>
    runHook(cfg, vm, op, sub, xml, { PATH: PATH(), ...env });
  /** What each call started, in order: the entry point and its arguments. */
  const started = () =>
    existsSync(calls)
      ? readFileSync(calls, 'utf8')
          .trim()
          .split('\n')
          .map((l) => l.replace(/^\S*\/dist\/bundle\//, ''))
      : [];

  it('an untagged VM: all five calls, no Node, before any ledger and beside one', async () => {
    for (const [op, sub] of HOOK_LIFECYCLE)
      expect(await call('plain', op, sub, domainXml('plain', U(1))), `${op}/${sub}`).to.deep.equal({
        code: 0,
        stderr: '',
      });
    expect(existsSync(stateDir()), 'a state dir').to.equal(false);
    // A locked transaction builds the marker directory the shim trusts from then on.
    await withLedger(stateDir(), async (txn) => txn.save());
    for (const [op, sub] of HOOK_LIFECYCLE)
      expect(await call('plain', op, sub, domainXml('plain', U(1))), `${op}/${sub}`).to.deep.equal({
        code: 0,
        stderr: '',
      });
    expect(started()).to.deep.equal([]);
  });

  it('a tagged VM on netns guests: Node for prepare and release only; the marker comes and goes with the lease', async () => {
    const xml = domainXml('tagged', U(2), [OFF]);
    const seen: string[][] = [];
    for (const [op, sub] of HOOK_LIFECYCLE) {
      rmSync(calls, { force: true });
      expect(await call('tagged', op, sub, xml), `${op}/${sub}`).to.deep.equal({ code: 0, stderr: '' });
      seen.push(started());
      if (op === 'prepare') expect(readdirSync(markerDir(stateDir()))).to.deep.equal([U(2)]);
    }
    expect(seen).to.deep.equal([
      ['hook-main.js -- tagged prepare begin -'],
      [],
      [], // a netns guest's VF moves by itself: no attach worker
      [],
      ['hook-main.js -- tagged release end -'],
    ]);
    expect(Object.keys((await readLedger(stateDir())).leases)).to.deep.equal([]);
    expect(readdirSync(markerDir(stateDir()))).to.deep.equal([]);
    await expectNoVfwireOn(sim!.a);
  });

  it('started: the attach worker, detached, for a lease that becomes a device of the running VM', async () => {
    const key = `${U(3)}/0`;
    await withLedger(stateDir(), async (txn) => {
      txn.data.leases[key] = testLease(key, 'live', { attach: 'hostdev', mac: '52:54:00:00:00:03' });
      txn.data.vnis['100'] = { vni: 100, members: [key], peers: [], undo: [] };
      await txn.save();
    });
    expect(readFileSync(join(markerDir(stateDir()), U(3)), 'utf8')).to.equal('attach\n');
    const xml = domainXml('live', U(3), [OFF]);
    for (const [op, sub] of HOOK_LIFECYCLE.slice(1, 4))
      expect(await call('live', op, sub, xml), `${op}/${sub}`).to.deep.equal({ code: 0, stderr: '' });
    const [worker, ...rest] = started();
    expect(rest, 'anything else').to.deep.equal([]);
    const [entry, config, uuid, vm, at] = worker!.split(' ');
    expect({ entry, config, uuid, vm }).to.deep.equal({ entry: 'attach-main.js', config: cfg, uuid: U(3), vm: 'live' });
    expect(Math.abs(Number(at) - Date.now()), 'STARTED_AT_MS is now').to.be.below(60_000);
    // Its release goes through Node, and takes the marker with the lease.
    expect(await call('live', 'release', 'end', xml)).to.deep.equal({ code: 0, stderr: '' });
    expect(Object.keys((await readLedger(stateDir())).leases)).to.deep.equal([]);
    expect(existsSync(join(markerDir(stateDir()), U(3)))).to.equal(false);
  });

  it('a VM whose metadata left the live XML still has its leases freed, by UUID', async () => {
    expect((await call('gone', 'prepare', 'begin', domainXml('gone', U(4), [OFF]))).code).to.equal(0);
    rmSync(calls, { force: true });
    for (const [op, sub] of [['reconnect', 'begin'], ...HOOK_LIFECYCLE.slice(3)] as const)
      expect(await call('gone', op, sub, domainXml('gone', U(4))), `${op}/${sub}`).to.deep.equal({
        code: 0,
        stderr: '',
      });
    expect(started()).to.deep.equal(['hook-main.js -- gone reconnect begin -', 'hook-main.js -- gone release end -']);
    expect(Object.keys((await readLedger(stateDir())).leases)).to.deep.equal([]);
    await expectNoVfwireOn(sim!.a);
  });

  it('when the shim cannot tell (no pinned state dir, a UUID not as libvirt writes it, a ledger from before markers) Node decides', async () => {
    const upper = '0000000A-0000-4000-8000-00000000000B';
    expect(await call('odd', 'release', 'end', domainXml('odd', upper))).to.deep.equal({ code: 0, stderr: '' });
    expect(await call('plain', 'release', 'end', domainXml('plain', U(1)), { VFWIRE_STATE_DIR: '' })).to.deep.equal({
      code: 0,
      stderr: '',
    });
    rmSync(markerDir(stateDir()), { recursive: true });
    expect(await call('plain', 'release', 'end', domainXml('plain', U(1)))).to.deep.equal({ code: 0, stderr: '' });
    expect(started()).to.deep.equal([
      'hook-main.js -- odd release end -',
      'hook-main.js -- plain release end -',
      'hook-main.js -- plain release end -',
    ]);
    await withLedger(stateDir(), async () => undefined);
    expect(existsSync(markerDir(stateDir())), 'rebuilt under the lock').to.equal(true);
  });

  it('a start refuses when the config keeps its state elsewhere than the hook looks', async () => {
    const r = await call('moved', 'prepare', 'begin', domainXml('moved', U(6), [OFF]), {
      VFWIRE_STATE_DIR: join(sim!.a.dir, 'old-state'),
    });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(
      `vfwire: ${cfg}: state_dir is ${stateDir()} but the hook looks for leases in ${join(sim!.a.dir, 'old-state')} (VFWIRE_STATE_DIR, pinned by install.sh): re-run install.sh, or put state_dir back`,
    );
    expect(Object.keys((await readLedger(stateDir())).leases)).to.deep.equal([]);
    // The package's hook names the package's way to render it again.
    const pkg = await call('moved', 'prepare', 'begin', domainXml('moved', U(6), [OFF]), {
      VFWIRE_STATE_DIR: join(sim!.a.dir, 'old-state'),
      VFWIRE_INSTALLED_BY: 'package',
    });
    expect(pkg.stderr).to.match(/\(VFWIRE_STATE_DIR, pinned by the vfwire package\): dpkg-reconfigure vfwire, or put/);
  });
});
