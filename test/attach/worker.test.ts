// The attach worker on a real libvirt driver: libvirt's own test driver (test:///default, in
// this process), whose domain "test" runs but takes no device, so every attach fails as a
// hypervisor refusal does. Under both on_attach_failure policies the leases are released (their
// undo runs for real, in a netns of the test's); `stop` destroys the domain, `keep` leaves it.

import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRetryableAttachError, openLiveDomain } from '../../src/attach/libvirt-domain.js';
import { runAttachWorker, type WorkerDeps } from '../../src/attach/worker.js';
import type { Config } from '../../src/config/config.js';
import { ExecRunner } from '../../src/exec/runner.js';
import { readLedger, withLedger } from '../../src/ledger/store.js';
import { closeLogger, createLogger } from '../../src/log.js';
import { openConnection } from '../../src/libvirt/index.js';
import { config, SIM_CONFIG } from '../helpers/inputs.js';
import { links } from '../helpers/sim.js';

const URI = 'test:///default';

describe('attach worker (libvirt test driver)', function () {
  this.timeout(30_000);
  const runner = new ExecRunner(10_000);
  const ns = `vfwt-attach-${process.pid}`;
  let dir: string;
  before(() => runner.run({ argv: ['ip', 'netns', 'add', ns] }));
  after(() => runner.run({ argv: ['ip', 'netns', 'del', ns] }));
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vfwt-attach-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const cfgFor = (policy: 'stop' | 'keep'): Config =>
    config(
      SIM_CONFIG +
        `state_dir: ${dir}/state\nlog_dir: ${dir}/log\nlibvirt_uri: "${URI}"\non_attach_failure: ${policy}\nattach_timeout_ms: 1000\n`,
    );

  // One active lease of the test driver's domain; its undo removes a veth pair made for it.
  async function leaseOf(cfg: Config, uuid: string): Promise<void> {
    await runner.run({ argv: ['ip', '-n', ns, 'link', 'add', 'vfwtd0', 'type', 'veth', 'peer', 'name', 'vfwtd1'] });
    await withLedger(cfg.stateDir, async (txn) => {
      const key = `${uuid}/0`;
      txn.data.leases[key] = {
        key,
        vm: 'test',
        uuid,
        index: 0,
        pf: 'enp3s0f0np0',
        vf: 0,
        pci: '0000:03:00.2',
        rep: 'enp3s0f0r0',
        vni: 100,
        mac: '52:54:00:00:00:a1',
        mtu: 1500,
        since: new Date().toISOString(),
        state: 'active',
        attach: 'ethernet',
        undo: [{ argv: ['ip', '-n', ns, 'link', 'del', 'vfwtd0'] }],
      };
      txn.data.vnis['100'] = { vni: 100, members: [key], peers: [], undo: [] };
      await txn.save();
    });
  }

  // The test driver's state lives while a connection is open: `conn` holds it through the run.
  async function run(policy: 'stop' | 'keep', sleeps: number[] = [], isRetryable = isRetryableAttachError) {
    const cfg = cfgFor(policy);
    const conn = await openConnection(URI);
    try {
      const [dom] = await conn.listDomains({ active: true });
      await leaseOf(cfg, dom!.uuid);
      const log = createLogger(cfg.logDir, 'attach');
      const deps: WorkerDeps = {
        cfg,
        log,
        runner,
        openDomain: openLiveDomain,
        isRetryable,
        sleep: async (ms) => void sleeps.push(ms),
      };
      const ok = await runAttachWorker('test', dom!.uuid, Date.now(), deps);
      await closeLogger(log);
      return {
        ok,
        running: (await conn.listDomains({ active: true })).map((d) => d.name),
        ledger: await readLedger(cfg.stateDir),
        log: readFileSync(join(cfg.logDir, 'vfwire.log'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>),
        links: [...(await links(ns)).keys()],
      };
    } finally {
      await conn.close();
    }
  }

  it('on_attach_failure stop: the domain is destroyed and its leases released', async () => {
    const r = await run('stop');
    expect(r.ok).to.equal(false);
    expect(r.running).to.deep.equal([]);
    expect(r.ledger.leases).to.deep.equal({});
    expect(r.ledger.vnis).to.deep.equal({});
    expect(r.links).not.to.include('vfwtd0');
    expect(r.log.find((l) => l.message === 'attach failed')).to.include({ policy: 'stop', vm: 'test' });
    expect(r.log.map((l) => l.message)).to.include(
      'stopped the VM: its VF could not be attached (on_attach_failure: stop)',
    );
  });

  it('on_attach_failure keep: the domain runs on without its VF, the leases are released', async () => {
    const r = await run('keep');
    expect(r.ok).to.equal(false);
    expect(r.running).to.deep.equal(['test']);
    expect(r.ledger.leases).to.deep.equal({});
    expect(r.links).not.to.include('vfwtd0');
    expect(r.log.find((l) => l.message === 'attach failed')).to.include({ policy: 'keep', vm: 'test' });
    expect(r.log.map((l) => l.message).filter((m) => String(m).startsWith('stopped the VM'))).to.deep.equal([]);
  });

  it('a refusal that is not the start job (not retryable) fails at once, without retries', async () => {
    const sleeps: number[] = [];
    await run('keep', sleeps);
    expect(sleeps).to.deep.equal([]);
  });

  it('a refusal libvirt gives while the start job runs is retried, backing off, until attach_timeout_ms', async () => {
    const sleeps: number[] = [];
    const r = await run('keep', sleeps, () => true);
    expect(r.ok).to.equal(false);
    expect(sleeps.slice(0, 4)).to.deep.equal([25, 50, 100, 100]);
    expect(sleeps.every((ms, i) => ms <= 1000 && (i === 0 || ms >= sleeps[i - 1]!))).to.equal(true);
    expect(r.ledger.leases).to.deep.equal({});
  });
});
