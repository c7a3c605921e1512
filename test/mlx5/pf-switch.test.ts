// failover pf-switch with packet-offloaded IPsec, run against the strict mlx5 model: vfwire's own
// host setup plan, `ipsec up` and `ipsec watch` on a host with both PFs in switchdev. PF0 loses
// its carrier (nothing is flushed: the SAs stay offloaded to a dead port); one watch round moves
// the underlay to PF1 and the pairs to new epochs offloaded there, every state and policy on PF1,
// none left on PF0, no key sent with twice.

import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderHostSetup } from '../../src/plan/host-setup.js';
import { generateSeed, keyFilePath, writeKeyFile } from '../../src/ipsec/keys.js';
import { ipsecUp } from '../../src/ipsec/static-sas.js';
import { UNDERLAY, watchOnce } from '../../src/ipsec/watch.js';
import { readLedger } from '../../src/ledger/store.js';
import { closeLogger, createLogger } from '../../src/log.js';
import { config } from '../helpers/inputs.js';
import { Mlx5Host } from './model.js';
import { ModelRunner } from './model-runner.js';
import { replay } from './replay.js';

const PF0 = 'enp3s0f0np0';
const PF1 = 'enp3s0f1np1';

describe('failover pf-switch with packet offload, run against the mlx5 model', function () {
  this.timeout(20_000);
  const dir = mkdtempSync(join(tmpdir(), 'vfwt-model-'));
  const cfg = config(`backend: real
underlay: { interface: ${PF0}, address: 192.168.80.2 }
pfs: [{ name: ${PF0} }, { name: ${PF1} }]
failover: { mode: pf-switch }
peers: [{ name: hostb, address: 192.168.80.3 }]
state_dir: ${dir}/state
log_dir: ${dir}/log
ipsec: { mode: static, key_dir: ${dir}/keys, offload: packet }
`);
  const host = new Mlx5Host({
    kernel: '6.12',
    iproute2: '6.15',
    pfs: [
      { name: PF0, pci: '0000:03:00.0', totalVfs: 4, numVfs: 0, eswitch: 'legacy', up: false },
      { name: PF1, pci: '0000:03:00.1', totalVfs: 4, numVfs: 0, eswitch: 'legacy', up: false },
    ],
  });
  const runner = new ModelRunner(host);
  const log = createLogger(join(dir, 'log'), 'test');
  const offloadedTo = () => {
    const s = host.state();
    return [...new Set([...s.states.map((x) => x.offload?.dev), ...s.policies.map((p) => p.offload?.dev)])];
  };

  before(async () => {
    mkdirSync(cfg.ipsec.keyDir, { recursive: true, mode: 0o700 });
    await writeKeyFile(keyFilePath(cfg.ipsec.keyDir, 'hostb'), 'hostb', generateSeed());
    const plan = renderHostSetup({
      pfs: [PF0, PF1].map((name, i) => ({ name, pci: `0000:03:00.${i}`, numVfs: 4, reps: [] })),
      underlay: { interface: PF0, address: '192.168.80.2', prefixLength: 24, mtu: 9216 },
      repMtu: 9000,
      sysfsRoot: '/sys',
      failover: { mode: 'pf-switch' },
    });
    const r = replay(
      host,
      plan.map((s) => s.do),
    );
    if (!r.ok) throw new Error(`host setup refused: ${r.refusal.message}`);
  });
  after(async () => {
    await closeLogger(log);
    rmSync(dir, { recursive: true, force: true });
  });

  it('host setup: both eswitches in switchdev, the underlay on PF0 only; ipsec up offloads to PF0', async () => {
    const s = host.state();
    expect([s.pfs[PF0]!.eswitch, s.pfs[PF1]!.eswitch]).to.deep.equal(['switchdev', 'switchdev']);
    expect([s.links[PF0]!.addresses, s.links[PF1]!.addresses]).to.deep.equal([['192.168.80.2/24'], []]);
    expect((await ipsecUp({ cfg, runner, log }, {})).map((o) => o.result)).to.deep.equal(['up (epoch 1)']);
    expect(offloadedTo()).to.deep.equal([PF0]);
    expect(await watchOnce(cfg, runner, log), 'nothing to do while PF0 has its link').to.deep.equal([]);
  });

  it('PF0 loses its carrier: one watch round moves the underlay and re-homes the pair on fresh SAs offloaded to PF1', async () => {
    host.setCarrier(PF0, false);
    expect(offloadedTo(), 'a lost carrier flushes nothing').to.deep.equal([PF0]);
    const findings = await watchOnce(cfg, runner, log);
    expect(findings.map((f) => [f.peer, f.recovered])).to.deep.equal([
      [UNDERLAY, true],
      ['hostb', true],
    ]);
    expect(findings[1]!.lost).to.deep.equal([`SAs and policies offloaded to ${PF0}, the underlay is on ${PF1}`]);
    expect(findings[1]!.action).to.match(/^moved to epoch 2/);
    const s = host.state();
    expect([s.links[PF0]!.addresses, s.links[PF1]!.addresses]).to.deep.equal([[], ['192.168.80.2/24']]);
    expect(offloadedTo(), 'every state and policy').to.deep.equal([PF1]);
    expect(s.garps, 'one gratuitous ARP, from PF1, once the SAs were there').to.deep.equal([
      { dev: PF1, address: '192.168.80.2', saDevs: [PF1] },
    ]);
    expect(s.policies.map((p) => p.dir).sort()).to.deep.equal(['in', 'out']);
    const ledger = await readLedger(cfg.stateDir);
    expect(ledger.ipsec!.peers['hostb']).to.include({ epoch: 2, uplink: PF1 });
    const keys = ledger.ipsec!.used.map((u) => u.split(':')[0]);
    expect(new Set(keys).size, 'no key sent with twice').to.equal(keys.length).and.equal(2);
    expect(await watchOnce(cfg, runner, log), 'a second round finds nothing').to.deep.equal([]);
  });

  it('PF0 comes back: it stands by, nothing moves', async () => {
    host.setCarrier(PF0, true);
    expect(await watchOnce(cfg, runner, log)).to.deep.equal([]);
    expect(offloadedTo()).to.deep.equal([PF1]);
  });
});
