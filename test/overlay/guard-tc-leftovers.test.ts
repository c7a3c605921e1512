// What gc finds in the bridge overlay's guard (overlay/rep-guard-leftovers.ts) and among
// tc-flower's rules (overlay/tc-flower/leftovers.ts) that no lease accounts for, from ledgers of
// real plans; the sim and the kernel lab run the same gc on a ledger that lost a lease.

import { expect } from 'chai';
import { recordPlan } from '../../src/ledger/record.js';
import { emptyLedger, type LedgerData } from '../../src/ledger/types.js';
import { parseGuardElements, planGuardLeftovers } from '../../src/overlay/rep-guard-leftovers.js';
import { planTcLeftovers } from '../../src/overlay/tc-flower/leftovers.js';
import { parseTcFilterShow } from '../../src/overlay/tc-flower/offload-check.js';
import { tcVniRules } from '../../src/overlay/tc-flower/rules.js';
import { tcVniStateOf } from '../../src/overlay/tc-flower/members.js';
import { planPrepare } from '../../src/plan/prepare.js';
import { config, inventory, pf, REAL_CONFIG, request, UUID1, UUID2 } from '../helpers/inputs.js';

const NOW = new Date('2026-11-26T12:00:00Z');

function ledgerWith(yaml: string, vms: [string, string, number][]): LedgerData {
  const ledger = emptyLedger();
  for (const [name, uuid, vni] of vms)
    recordPlan(ledger, planPrepare(request(name, uuid, [{ vni }]), inventory(pf(4)), ledger, config(yaml), NOW));
  return ledger;
}

// nft -j list table bridge vfwire (nftables 1.0.6), two representors guarded.
const GUARD_JSON = JSON.stringify({
  nftables: [
    { metainfo: { version: '1.0.6', json_schema_version: 1 } },
    { table: { family: 'bridge', name: 'vfwire', handle: 1 } },
    { set: { family: 'bridge', name: 'reps', table: 'vfwire', type: 'ifname', elem: ['enp3s0f0r0', 'enp3s0f0r3'] } },
    {
      set: {
        family: 'bridge',
        name: 'allowed',
        table: 'vfwire',
        type: ['ifname', 'ether_addr'],
        elem: [
          { concat: ['enp3s0f0r0', 'PLACEHOLDER'] },
          { concat: ['enp3s0f0r0', '52:54:00:00:00:99'] },
          { concat: ['enp3s0f0r3', '52:54:00:00:00:03'] },
          { concat: ['we"ird', '52:54:00:00:00:04'] },
        ],
      },
    },
  ],
});

describe('gc leftovers: the bridge guard and tc-flower rules', () => {
  it("guard: a representor or (representor, MAC) no lease holds is removed; a lease's own pair stays", () => {
    const ledger = ledgerWith(REAL_CONFIG, [['web1', UUID1, 100]]);
    const lease = Object.values(ledger.leases)[0]!;
    const found = parseGuardElements(GUARD_JSON.replace('PLACEHOLDER', lease.mac.toUpperCase()));
    // A name the kernel would not take is not vfwire's: never parsed, never touched.
    expect(found.reps).to.deep.equal(['enp3s0f0r0', 'enp3s0f0r3']);
    expect(found.allowed.map((p) => p.rep)).to.not.include('we"ird');
    const left = planGuardLeftovers(undefined, found, ledger);
    expect(left.map((l) => l.line)).to.deep.equal([
      'guard: enp3s0f0r0 may send as 52:54:00:00:00:99, which no lease holds',
      'guard: enp3s0f0r3 may send as 52:54:00:00:00:03, which no lease holds',
      'guard: representor enp3s0f0r3 guarded, but no lease holds it',
    ]);
    expect(left.map((l) => l.command.stdin)).to.deep.equal([
      'delete element bridge vfwire allowed { "enp3s0f0r0" . 52:54:00:00:00:99 }\n',
      'delete element bridge vfwire allowed { "enp3s0f0r3" . 52:54:00:00:00:03 }\n',
      'delete element bridge vfwire reps { "enp3s0f0r3" }\n',
    ]);
    expect(left[0]!.command.argv).to.deep.equal(['nft', '-f', '-']);
  });

  it('guard: nothing to remove when every element is a recorded lease’s', () => {
    const ledger = ledgerWith(REAL_CONFIG, [['web1', UUID1, 100]]);
    const l = Object.values(ledger.leases)[0]!;
    expect(
      planGuardLeftovers(undefined, { reps: [l.rep], allowed: [{ rep: l.rep, mac: l.mac }] }, ledger),
    ).to.deep.equal([]);
  });

  const TC = REAL_CONFIG + 'overlay: tc-flower\n';

  it("tc-flower: decap rules no recorded VNI names go, a recorded VNI's stay; qdiscs of representors no lease holds go", () => {
    // What the host holds: the rules of VNIs 100 (web1) and 200 (web2); the ledger lost web2.
    const both = ledgerWith(TC, [
      ['web1', UUID1, 100],
      ['web2', UUID2, 200],
    ]);
    const ledger = structuredClone(both);
    const lost = Object.values(ledger.leases).find((l) => l.vm === 'web2')!;
    delete ledger.leases[lost.key];
    delete ledger.vnis['200'];
    const onHost = Object.values(both.vnis).flatMap((v) => tcVniRules(v.tc!, tcVniStateOf(both, v.vni)));
    const vxlanRules = onHost.filter((r) => r.dev === 'vfwvxlan');
    // As tc -j filter show prints them: a head entry per pref, then each filter with its options.
    const shown = JSON.stringify(
      vxlanRules.flatMap((r) => [
        { protocol: 'all', pref: r.pref, kind: 'flower', chain: 0 },
        { protocol: 'all', pref: r.pref, kind: 'flower', chain: 0, options: { handle: r.handle, skip_sw: true } },
      ]),
    );
    const host = { underlayAddress: '192.168.80.2' };
    const left = planTcLeftovers(
      host,
      { vxlanFilters: parseTcFilterShow(shown, 'vfwvxlan'), repsWithQdisc: [lost.rep] },
      ledger,
    );
    const web2Decap = vxlanRules.filter(
      (r) =>
        !tcVniRules(ledger.vnis['100']!.tc!, tcVniStateOf(ledger, 100)).some(
          (k) => k.pref === r.pref && k.handle === r.handle,
        ),
    );
    expect(web2Decap.length, "web2's decap rules").to.be.greaterThan(0);
    expect(left.filter((l) => l.line.startsWith('tc rule'))).to.have.length(web2Decap.length);
    expect(left.at(-1)!.line).to.equal(
      `ingress qdisc (and its rules) on representor ${lost.rep}, whose VF no lease holds`,
    );
    expect(left.at(-1)!.command.argv).to.deep.equal(['tc', 'qdisc', 'del', 'dev', lost.rep, 'ingress']);
    expect(left[0]!.command.argv.slice(0, 5)).to.deep.equal(['tc', 'filter', 'del', 'dev', 'vfwvxlan']);
    // With the ledger whole, nothing is left over.
    expect(
      planTcLeftovers(host, { vxlanFilters: parseTcFilterShow(shown, 'vfwvxlan'), repsWithQdisc: [] }, both),
    ).to.deep.equal([]);
  });
});
