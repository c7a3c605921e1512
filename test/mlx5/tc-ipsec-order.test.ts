// tc-flower and packet-offloaded IPsec on one eswitch, replayed through the strict mlx5 model in
// the order vfwire runs them (ipsec/tc-order.ts): a VM's rules only after the SAs; after the
// uplink went down (the kernel flushed its offloaded SAs and policies, and the NIC pointed the
// encap rules at the plain uplink) the rules go down before the first SA comes back, and come
// back over it; `ipsec down` takes them down before the SAs. The model refuses the naive order.

import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyFingerprint } from '../../src/ipsec/keys.js';
import { pairContext, planRecover, planUp } from '../../src/ipsec/pair-plan.js';
import { tcRulesDown, tcRulesUp } from '../../src/ipsec/tc-order.js';
import { xfrmForm } from '../../src/ipsec/xfrm-form.js';
import { markActive, recordPlan } from '../../src/ledger/record.js';
import { emptyLedger, type LedgerData } from '../../src/ledger/types.js';
import { renderTcHost } from '../../src/overlay/tc-flower/host-device.js';
import { planPrepare } from '../../src/plan/prepare.js';
import { planRelease } from '../../src/plan/release.js';
import type { Command } from '../../src/exec/step.js';
import { FIXTURES } from '../helpers/golden.js';
import { config, inventory, pf, REAL_CONFIG, request, UUID1 } from '../helpers/inputs.js';
import { Mlx5Host } from './model.js';
import { commandsFromPlanText, replay } from './replay.js';

const PF = 'enp3s0f0np0';
const B = '192.168.80.3';
const SEED = { seed: Buffer.alloc(32, 0x5a), id: keyFingerprint(Buffer.alloc(32, 0x5a)) };
const CFG = config(REAL_CONFIG + 'overlay: tc-flower\nipsec: { mode: static }\n');
const FORM = xfrmForm({ kernel: [6, 12], iproute2: [6, 15], switchdev: true }, 'packet');
const CTX = pairContext(CFG, CFG.peers[0]!, FORM);
const NOW = new Date('2026-01-01T00:00:00Z');

function accept(host: Mlx5Host, commands: Command[], what: string): void {
  const r = replay(host, commands);
  if (!r.ok)
    expect.fail(
      `${what}: command ${r.index} refused (${r.refusal.rule}): ${r.command.argv.join(' ')}: ${r.refusal.message}`,
    );
}

/** Encap rules the eswitch holds in hardware, and how many of them bypass the IPsec TX tables. */
function encap(host: Mlx5Host): { rules: number; clear: number } {
  const rules = host.state().filters.filter((f) => f.inHw && f.dests.some((d) => d.kind === 'uplink-encap'));
  return { rules: rules.length, clear: rules.filter((f) => !f.viaIpsecTx).length };
}

/** Host setup, ipsec up, web1 on VNI 100 (one peer): the ledger and the host as vfwire leaves them. */
function running(): { host: Mlx5Host; ledger: LedgerData } {
  const host = new Mlx5Host({
    kernel: '6.12',
    iproute2: '6.15',
    pfs: [{ name: PF, pci: '0000:03:00.0', totalVfs: 4, numVfs: 0, eswitch: 'legacy', up: false }],
  });
  accept(
    host,
    commandsFromPlanText(readFileSync(join(FIXTURES, 'failover/host-a-plain.txt'), 'utf8').split('# undo')[0]!),
    'host setup',
  );
  accept(
    host,
    renderTcHost({ underlayAddress: CFG.underlay.address }, 9166).map((s) => s.do),
    'tc host setup',
  );
  const up = planUp(CTX, SEED, 1);
  accept(
    host,
    up.steps.map((s) => s.do),
    'ipsec up',
  );
  const ledger = emptyLedger();
  ledger.ipsec = { peers: { hostb: up.next }, used: [] };
  const plan = planPrepare(request('web1', UUID1, [{ vni: 100 }]), inventory(pf(4)), ledger, CFG, NOW);
  accept(
    host,
    plan.steps.map((s) => s.do),
    'VM start',
  );
  recordPlan(ledger, plan);
  markActive(
    ledger,
    plan.leases.map((l) => l.key),
  );
  return { host, ledger };
}

/** What the watch installs for a pair whose SAs and policies were all flushed. */
function recovery(ledger: LedgerData): Command[] {
  const state = ledger.ipsec!.peers.hostb!;
  return planRecover(
    CTX,
    SEED,
    state,
    () => false,
    state.sas.map((sa) => ({ src: sa.src, dst: sa.dst, dir: sa.dir })),
  ).steps.map((s) => s.do);
}

describe('tc-flower with IPsec packet offload: the order of rules and SAs, through the mlx5 model', () => {
  it("a VM's encap rules, made after ipsec up, go through the IPsec TX tables", () => {
    const { host } = running();
    expect(encap(host)).to.deep.equal({ rules: 1, clear: 0 });
  });

  it('an uplink that went down leaves the encap rules sending in clear, and the naive recovery is refused', () => {
    const { host, ledger } = running();
    host.setLinkDown(PF);
    accept(host, commandsFromPlanText(`ip link set dev ${PF} up`), 'link up');
    expect(encap(host), 'the window vfwire must close').to.deep.equal({ rules: 1, clear: 1 });
    const r = replay(host, recovery(ledger));
    expect(r.ok ? 'accepted' : r.refusal.rule).to.equal('mlx5.ipsec.first-rule-while-tc-flows');
  });

  it("vfwire's recovery: rules down, SAs in, rules back over them", () => {
    const { host, ledger } = running();
    host.setLinkDown(PF);
    accept(host, commandsFromPlanText(`ip link set dev ${PF} up`), 'link up');
    accept(
      host,
      tcRulesDown(ledger).map((s) => s.do),
      'rules down',
    );
    expect(encap(host), 'nothing leaves while they are down').to.deep.equal({ rules: 0, clear: 0 });
    accept(host, recovery(ledger), 'SAs of the next epoch');
    const back = tcRulesUp(ledger, new Set([B]));
    if ('missing' in back) expect.fail(`rules kept down: ${back.missing.join(', ')}`);
    accept(
      host,
      back.steps.map((s) => s.do),
      'rules back',
    );
    expect(encap(host)).to.deep.equal({ rules: 1, clear: 0 });
  });

  it('rules stay down while a peer they reach has no SAs', () => {
    const { ledger } = running();
    expect(tcRulesUp(ledger, new Set())).to.deep.equal({ missing: [B] });
  });

  it('ipsec down: rules first, then the SAs; nothing is left to send in clear', () => {
    const { host, ledger } = running();
    accept(
      host,
      tcRulesDown(ledger).map((s) => s.do),
      'rules down',
    );
    accept(host, [...ledger.ipsec!.peers.hostb!.undo].reverse(), 'SAs and policies down');
    expect(encap(host)).to.deep.equal({ rules: 0, clear: 0 });
    expect(host.state().states).to.deep.equal([]);
  });

  it('a VM that stops while the rules are down rewrites no rule of the others', () => {
    const { ledger } = running();
    ledger.ipsec!.tcRulesDown = true;
    const text = planRelease(ledger, UUID1).commands.map((c) => c.argv.join(' '));
    expect(text.filter((t) => / filter (add|replace) /.test(t))).to.deep.equal([]);
  });
});
