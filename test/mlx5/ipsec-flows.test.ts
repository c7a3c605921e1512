// vfwire's own `ipsec up`, `ipsec down` and `ipsec watch` code, run against the strict mlx5 model
// on a tc-flower host with a VM: the order of rules and SAs holds without a NIC (tc-order.ts),
// an uplink that went down is recovered without ever leaving the encap rules in clear past the
// watch's round, and `ipsec down` of one peer that the rules still reach is refused.

import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applySteps } from '../../src/exec/apply.js';
import { generateSeed, keyFilePath, writeKeyFile } from '../../src/ipsec/keys.js';
import { ipsecDown, ipsecUp } from '../../src/ipsec/static-sas.js';
import { watchOnce } from '../../src/ipsec/watch.js';
import { markActive, recordPlan } from '../../src/ledger/record.js';
import { readLedger, withLedger } from '../../src/ledger/store.js';
import { closeLogger, createLogger } from '../../src/log.js';
import { renderTcHost } from '../../src/overlay/tc-flower/host-device.js';
import { planPrepare } from '../../src/plan/prepare.js';
import { FIXTURES } from '../helpers/golden.js';
import { config, inventory, pf, REAL_CONFIG, request, UUID1 } from '../helpers/inputs.js';
import { Mlx5Host } from './model.js';
import { ModelRunner } from './model-runner.js';
import { commandsFromPlanText, replay } from './replay.js';

const PF = 'enp3s0f0np0';

describe('ipsec up, watch and down on a tc-flower host, run against the mlx5 model', function () {
  this.timeout(20_000);
  const dir = mkdtempSync(join(tmpdir(), 'vfwt-model-'));
  const cfg = config(
    REAL_CONFIG +
      `overlay: tc-flower\nstate_dir: ${dir}/state\nlog_dir: ${dir}/log\nipsec: { mode: static, key_dir: ${dir}/keys }\n`,
  );
  const host = new Mlx5Host({
    kernel: '6.12',
    iproute2: '6.15',
    pfs: [{ name: PF, pci: '0000:03:00.0', totalVfs: 4, numVfs: 0, eswitch: 'legacy', up: false }],
  });
  const runner = new ModelRunner(host);
  const log = createLogger(join(dir, 'log'), 'test');
  const deps = { cfg, runner, log };
  const encap = () => {
    const rules = host.state().filters.filter((f) => f.inHw && f.dests.some((d) => d.kind === 'uplink-encap'));
    return { rules: rules.length, clear: rules.filter((f) => !f.viaIpsecTx).length };
  };

  before(async () => {
    mkdirSync(cfg.ipsec.keyDir, { recursive: true, mode: 0o700 });
    for (const p of cfg.peers) await writeKeyFile(keyFilePath(cfg.ipsec.keyDir, p.name), p.name, generateSeed());
    const setup = [
      ...commandsFromPlanText(readFileSync(join(FIXTURES, 'failover/host-a-plain.txt'), 'utf8').split('# undo')[0]!),
      ...renderTcHost({ underlayAddress: cfg.underlay.address }, 9166).map((s) => s.do),
    ];
    const r = replay(host, setup);
    if (!r.ok) throw new Error(`host setup refused: ${r.refusal.message}`);
  });
  after(async () => {
    await closeLogger(log);
    rmSync(dir, { recursive: true, force: true });
  });

  it('ipsec up, then a VM: its encap rule goes through the IPsec TX tables', async () => {
    expect((await ipsecUp(deps, {})).map((o) => o.result)).to.deep.equal(['up (epoch 1)', 'up (epoch 1)']);
    await withLedger(cfg.stateDir, async (txn) => {
      const plan = planPrepare(request('web1', UUID1, [{ vni: 100 }]), inventory(pf(4)), txn.data, cfg);
      recordPlan(txn.data, plan);
      await applySteps(plan.steps, runner);
      markActive(
        txn.data,
        plan.leases.map((l) => l.key),
      );
      await txn.save();
    });
    expect(encap()).to.deep.equal({ rules: 1, clear: 0 });
  });

  it('the uplink goes down and up: the watch takes the rules down, installs fresh SAs, and brings the rules back over them', async () => {
    host.setLinkDown(PF);
    host.run({ argv: ['ip', 'link', 'set', 'dev', PF, 'up'] });
    expect(encap(), 'the NIC pointed the rule at the plain uplink').to.deep.equal({ rules: 1, clear: 1 });
    const findings = await watchOnce(cfg, runner, log);
    expect(findings.map((f) => [f.peer, f.recovered])).to.deep.equal([
      ['hostb', true],
      ['hostc', true],
      ['tc-flower rules', true],
    ]);
    expect(encap()).to.deep.equal({ rules: 1, clear: 0 });
    expect((await readLedger(cfg.stateDir)).ipsec!.tcRulesDown).to.equal(undefined);
    expect(await watchOnce(cfg, runner, log), 'a second round finds nothing').to.deep.equal([]);
  });

  it('ipsec down of one peer the rules reach is refused; down for all takes the rules down first', async () => {
    const one = await ipsecDown(deps, { peer: 'hostb' }).then(
      () => 'done',
      (e: Error) => e.message,
    );
    expect(one).to.match(/ipsec down --peer hostb: tc-flower rules encapsulate to it/);
    expect((await ipsecDown(deps, {})).map((o) => o.result)).to.deep.equal(['down', 'down']);
    expect(encap()).to.deep.equal({ rules: 0, clear: 0 });
    expect(host.state().states).to.deep.equal([]);
    expect((await readLedger(cfg.stateDir)).ipsec!.tcRulesDown).to.equal(true);
  });

  it("ipsec up again (the epoch after the watch's) brings the rules back over the new SAs", async () => {
    const out = await ipsecUp(deps, {});
    expect(out.map((o) => `${o.peer}: ${o.result}`)).to.deep.equal([
      'hostb: up (epoch 3)',
      'hostc: up (epoch 3)',
      'tc-flower rules: back (4)',
    ]);
    expect(encap()).to.deep.equal({ rules: 1, clear: 0 });
  });
});
