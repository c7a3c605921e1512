// Real-host sequences with VMs running, through the strict mlx5 model, with vfwire's own code
// (host setup plans, ipsec up/rotate/watch/down, prepare and release): the bridge overlay with
// packet offload through a key rotation and a PF link flap, and VF LAG (offload none) through a
// port failover. After every step no VNI with members may send in clear: each peer it reaches has
// an outbound policy, or the VNI's admission chains drop what would go without one.

import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../src/config/config.js';
import { applySteps } from '../../src/exec/apply.js';
import { undoRelease } from '../../src/ops/release.js';
import { generateSeed, keyFilePath, writeKeyFile } from '../../src/ipsec/keys.js';
import { ipsecRotate } from '../../src/ipsec/rotate.js';
import { ipsecDown, ipsecUp } from '../../src/ipsec/static-sas.js';
import { watchOnce } from '../../src/ipsec/watch.js';
import { dropLeases, markActive, recordPlan } from '../../src/ledger/record.js';
import { readLedger, withLedger } from '../../src/ledger/store.js';
import { closeLogger, createLogger, type Logger } from '../../src/log.js';
import { planPrepare } from '../../src/plan/prepare.js';
import { planRelease } from '../../src/plan/release.js';
import type { Inventory } from '../../src/host/inventory.js';
import { FIXTURES } from '../helpers/golden.js';
import { config, inventory, pf, request, UUID1, UUID2 } from '../helpers/inputs.js';
import { Mlx5Host } from './model.js';
import { ModelRunner } from './model-runner.js';
import { commandsFromPlanText, replay } from './replay.js';

const PF0 = 'enp3s0f0np0';
const PF1 = 'enp3s0f1np1';
const doHalf = (name: string) => commandsFromPlanText(readFileSync(join(FIXTURES, name), 'utf8').split('# undo')[0]!);

/** A host under test: the model, vfwire's config for it, and its VMs' start and stop. */
function testHost(yaml: string, pfs: ConstructorParameters<typeof Mlx5Host>[0]['pfs'], inv: Inventory) {
  const dir = mkdtempSync(join(tmpdir(), 'vfwt-model-'));
  const cfg: Config = config(yaml + `state_dir: ${dir}/state\nlog_dir: ${dir}/log\n`.replace(/^/, ''));
  const host = new Mlx5Host({ kernel: '6.12', iproute2: '6.15', pfs });
  const runner = new ModelRunner(host);
  const log: Logger = createLogger(join(dir, 'log'), 'test');
  return {
    dir,
    cfg,
    host,
    runner,
    log,
    deps: { cfg, runner, log },
    async start(vm: string, uuid: string, vni: number) {
      await withLedger(cfg.stateDir, async (txn) => {
        const plan = planPrepare(request(vm, uuid, [{ vni, encrypt: 'required' }]), inv, txn.data, cfg);
        recordPlan(txn.data, plan);
        // Batched, as the hook runs a start (hook/prepare.ts).
        await applySteps(plan.steps, runner, { batch: true });
        markActive(
          txn.data,
          plan.leases.map((l) => l.key),
        );
        await txn.save();
      });
    },
    async stop(uuid: string) {
      await withLedger(cfg.stateDir, async (txn) => {
        const plan = planRelease(txn.data, uuid);
        const errors = await undoRelease(plan.commands, runner);
        expect(
          errors.map((e) => e.message),
          'release errors',
        ).to.deep.equal([]);
        dropLeases(txn.data, plan.keys);
        await txn.save();
      });
    },
    /** VNIs with members whose traffic to some peer could leave in clear. */
    async clearTextVnis(): Promise<string[]> {
      const ledger = await readLedger(cfg.stateDir);
      const s = host.state();
      const bad: string[] = [];
      for (const [vni, v] of Object.entries(ledger.vnis)) {
        if (v.members.length === 0) continue;
        for (const peer of cfg.peers.filter((p) => !p.vnis || p.vnis.includes(Number(vni)))) {
          const policy = s.policies.some((p) => p.dir === 'out' && p.sel.dst?.split('/')[0] === peer.address);
          if (!policy && !s.admission.includes(Number(vni))) bad.push(`${vni} -> ${peer.name}`);
        }
      }
      return bad;
    },
    async close() {
      await closeLogger(log);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('the bridge overlay with packet offload and VMs running, through the mlx5 model', function () {
  this.timeout(20_000);
  const t = testHost(
    `backend: real\nunderlay: { interface: ${PF0}, address: 192.168.80.2 }\npfs: [{ name: ${PF0} }]\npeers: [{ name: hostb, address: 192.168.80.3 }]\nipsec: { mode: static, offload: packet, key_dir: KEYS }\n`.replace(
      'KEYS',
      join(tmpdir(), `vfwt-keys-${process.pid}`),
    ),
    [{ name: PF0, pci: '0000:03:00.0', totalVfs: 4, numVfs: 0, eswitch: 'legacy', up: false }],
    inventory(pf(4)),
  );
  const keyDir = t.cfg.ipsec.keyDir;

  before(async () => {
    mkdirSync(keyDir, { recursive: true, mode: 0o700 });
    await writeKeyFile(keyFilePath(keyDir, 'hostb'), 'hostb', generateSeed());
    const r = replay(t.host, doHalf('failover/host-a-plain.txt'));
    if (!r.ok) throw new Error(`host setup refused: ${r.refusal.message}`);
  });
  after(async () => {
    await t.close();
    rmSync(keyDir, { recursive: true, force: true });
  });

  it('ipsec up, then two VMs on one VNI: first lease and second, nothing in clear', async () => {
    expect((await ipsecUp(t.deps, {})).map((o) => o.result)).to.deep.equal(['up (epoch 1)']);
    await t.start('web1', UUID1, 100);
    await t.start('web2', UUID2, 100);
    expect(await t.clearTextVnis()).to.deep.equal([]);
  });

  it('a key rotation (start, commit, finish) with the VMs running: every step accepted, nothing in clear', async () => {
    await writeKeyFile(keyFilePath(keyDir, 'hostb'), 'hostb', generateSeed());
    const results: string[] = [];
    for (const step of ['start', 'commit', 'finish'] as const) {
      const out = await ipsecRotate(t.deps, { peer: 'hostb', step });
      results.push(out.result);
      expect(await t.clearTextVnis(), `after ${step}`).to.deep.equal([]);
    }
    expect(results[0]).to.equal('rotating: both keys are received');
    expect(results[1]).to.equal('rotating: sending with the new key');
    expect(results[2]).to.match(/^rotated to key [0-9a-f]{16}, epoch 1$/);
    const s = t.host.state();
    expect(
      s.states.every((x) => x.offload?.dev === PF0 && x.offload.type === 'packet'),
      'every SA in the NIC',
    ).to.equal(true);
  });

  it('a PF link flap with the VMs running: flushed with the link, the watch puts fresh SAs back', async () => {
    t.host.setLinkDown(PF0);
    expect(t.host.state().states, 'flushed').to.deep.equal([]);
    expect(await t.clearTextVnis(), 'while down: the admission holds').to.deep.equal([]);
    t.host.run({ argv: ['ip', 'link', 'set', 'dev', PF0, 'up'] });
    const findings = await watchOnce(t.cfg, t.runner, t.log);
    expect(findings.map((f) => [f.peer, f.recovered])).to.deep.equal([['hostb', true]]);
    expect(
      t.host
        .state()
        .policies.map((p) => p.dir)
        .sort(),
    ).to.deep.equal(['in', 'out']);
    expect(await t.clearTextVnis()).to.deep.equal([]);
  });

  it('the last VM stops, then ipsec down: the VNI and its admission go, no SA or policy is left', async () => {
    await t.stop(UUID1);
    expect(await t.clearTextVnis(), 'one member left').to.deep.equal([]);
    await t.stop(UUID2);
    expect((await ipsecDown(t.deps, {})).map((o) => o.result)).to.deep.equal(['down']);
    const s = t.host.state();
    expect([s.states, s.policies, s.admission]).to.deep.equal([[], [], []]);
  });
});

describe('VF LAG (offload none) with a VM running, through the mlx5 model', function () {
  this.timeout(20_000);
  const t = testHost(
    `backend: real\nunderlay: { interface: bond0, address: 192.168.80.2 }\npfs: [{ name: ${PF0} }, { name: ${PF1} }]\nfailover: { mode: active-backup }\npeers: [{ name: hostb, address: 192.168.80.3 }]\nipsec: { mode: static, offload: none, key_dir: KEYS }\n`.replace(
      'KEYS',
      join(tmpdir(), `vfwt-keys-lag-${process.pid}`),
    ),
    [
      { name: PF0, pci: '0000:03:00.0', totalVfs: 4, numVfs: 0, eswitch: 'legacy', up: false },
      { name: PF1, pci: '0000:03:00.1', totalVfs: 4, numVfs: 0, eswitch: 'legacy', up: false },
    ],
    inventory(pf(4), pf(4, PF1, 1)),
  );

  before(async () => {
    mkdirSync(t.cfg.ipsec.keyDir, { recursive: true, mode: 0o700 });
    await writeKeyFile(keyFilePath(t.cfg.ipsec.keyDir, 'hostb'), 'hostb', generateSeed());
  });
  after(async () => {
    await t.close();
    rmSync(t.cfg.ipsec.keyDir, { recursive: true, force: true });
  });

  it('the VF LAG host setup plan forms the LAG; ipsec up puts CPU SAs on the bond; a VM starts', async () => {
    const r = replay(t.host, doHalf('failover/host-a-failover.txt'));
    if (!r.ok)
      expect.fail(
        `VF LAG host setup: command ${r.index} refused (${r.refusal.rule}): ${r.command.argv.join(' ')}: ${r.refusal.message}`,
      );
    expect(t.host.state().lag).to.not.equal(null);
    expect((await ipsecUp(t.deps, {})).map((o) => o.result)).to.deep.equal(['up (epoch 1)']);
    expect(
      t.host.state().states.every((s) => s.offload === undefined),
      'no SA offloaded',
    ).to.equal(true);
    await t.start('web1', UUID1, 100);
    expect(await t.clearTextVnis()).to.deep.equal([]);
  });

  it('the active port goes down: the bond fails over, the CPU SAs stay, nothing in clear; the VM stops cleanly', async () => {
    t.host.setLinkDown(PF0);
    expect(t.host.state().states.length, 'CPU SAs belong to no port').to.be.greaterThan(0);
    expect(await watchOnce(t.cfg, t.runner, t.log), 'the watch finds nothing to do').to.deep.equal([]);
    expect(await t.clearTextVnis()).to.deep.equal([]);
    await t.stop(UUID1);
  });
});
