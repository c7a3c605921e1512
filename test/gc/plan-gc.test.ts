import { expect } from 'chai';
import { planGc } from '../../src/gc/plan-gc.js';
import { repUnguardScript } from '../../src/overlay/rep-guard.js';
import { recordPlan } from '../../src/ledger/record.js';
import { emptyLedger } from '../../src/ledger/types.js';
import { planPrepare } from '../../src/plan/prepare.js';
import { formatCommand } from '../../src/exec/step.js';
import { config, inventory, pf, REAL_CONFIG, request, UUID1, UUID2 } from '../helpers/inputs.js';

const LONG_AGO = new Date('2026-01-01T00:00:00Z');
const NOW = new Date('2026-11-26T12:00:00Z');

function ledgerWith(vms: [string, string, number][], since = LONG_AGO) {
  const ledger = emptyLedger();
  for (const [name, uuid, vni] of vms)
    recordPlan(
      ledger,
      planPrepare(request(name, uuid, [{ vni }]), inventory(pf(4)), ledger, config(REAL_CONFIG), since),
    );
  return ledger;
}

describe('planGc', () => {
  it('removes admission chains of a VNI the ledger does not know, never those of a live or released one', () => {
    const ledger = ledgerWith([
      ['alive', UUID1, 100],
      ['dead', UUID2, 200],
    ]);
    const plan = planGc({
      ledger,
      running: new Set([UUID1]),
      links: [],
      notBefore: NOW,
      admission: { netns: 'ns1', vnis: [100, 200, 300] },
    });
    expect(plan.leftovers).to.deep.equal(['admission chains of VNI 300: not in the ledger']);
    const removal = plan.commands.filter((c) => c.argv.includes('nft') && c.stdin?.includes('delete chain'));
    // VNI 200's own undo (with its released lease) and VNI 300's leftover; VNI 100 stays.
    expect(removal.map((c) => /vni_(\d+) /.exec(c.stdin!)?.[1])).to.deep.equal(['200', '300']);
    expect(removal[1]!.argv).to.deep.equal(['ip', 'netns', 'exec', 'ns1', 'nft', '-f', '-']);
  });

  it('releases the leases of VMs that are not running, keeping the shared overlay of a running one', () => {
    const ledger = ledgerWith([
      ['alive', UUID1, 100],
      ['dead', UUID2, 100],
    ]);
    const plan = planGc({ ledger, running: new Set([UUID1]), links: [], notBefore: NOW });
    expect(plan.staleLeases).to.deep.equal([{ key: `${UUID2}/0`, vm: 'dead', why: 'its domain is not running' }]);
    expect(plan.commands.map(formatCommand)).to.deep.equal([
      'ip link set dev enp3s0f0r1 nomaster down',
      'ip link set dev enp3s0f0np0 vf 1 mac 00:00:00:00:00:00',
      // nft last (exec/nft-batch.ts nftLast): the guard outlives the member's other undo.
      `nft -f - <<< '${repUnguardScript('enp3s0f0r1', ledger.leases[`${UUID2}/0`]!.mac).trim()}'`,
    ]);
  });

  it('leaves young leases alone: their VM may still be starting', () => {
    const ledger = ledgerWith([['starting', UUID1, 100]], NOW);
    expect(planGc({ ledger, running: new Set(), links: [], notBefore: LONG_AGO }).commands).to.deep.equal([]);
  });

  it('removes vfwire devices and bridge ports that no lease accounts for, and nothing else', () => {
    const ledger = ledgerWith([['alive', UUID1, 100]]);
    const links = [
      { name: 'vfwbr100', master: undefined },
      { name: 'vfwvx100', master: 'vfwbr100' },
      { name: 'enp3s0f0r0', master: 'vfwbr100' },
      { name: 'enp3s0f0r3', master: 'vfwbr100' },
      { name: 'vfwbr200' },
      { name: 'vfwvx200', master: 'vfwbr200', netns: 'underlay' },
      { name: 'br0' },
      { name: 'eth1', master: 'br0' },
      { name: 'vfwbrother' },
    ];
    const plan = planGc({ ledger, running: new Set([UUID1]), links, notBefore: NOW });
    expect(plan.leftovers).to.deep.equal([
      'enp3s0f0r3: port of vfwbr100 without a lease',
      'vfwbr200: not in the ledger',
      'vfwvx200 (netns underlay): not in the ledger',
    ]);
    expect(plan.commands.map(formatCommand)).to.deep.equal([
      'ip link set dev enp3s0f0r3 nomaster down',
      'ip link del vfwbr200',
      'ip -n underlay link del vfwvx200',
    ]);
  });

  it("does not delete twice what a stale lease's release already removes", () => {
    const ledger = ledgerWith([['dead', UUID1, 100]]);
    const plan = planGc({
      ledger,
      running: new Set(),
      links: [
        { name: 'vfwbr100' },
        { name: 'vfwvx100', master: 'vfwbr100' },
        { name: 'enp3s0f0r0', master: 'vfwbr100' },
      ],
      notBefore: NOW,
    });
    expect(plan.leftovers).to.deep.equal([]);
    expect(plan.commands.filter((c) => c.argv.includes('vfwbr100') && c.argv.includes('del'))).to.have.length(1);
  });

  it('frees the lease of a device detached from its running domain, and only that', () => {
    const ledger = ledgerWith([
      ['detached', UUID1, 100],
      ['attached', UUID2, 100],
    ]);
    for (const l of Object.values(ledger.leases)) l.attachedAt = NOW.toISOString();
    const running = new Set([UUID1, UUID2]);
    const liveAliases = new Map([
      [UUID1, new Set<string>()],
      [UUID2, new Set(['ua-vfwire-0'])],
    ]);
    // Young leases too: a detach is no start in progress.
    const plan = planGc({ ledger, running, links: [], notBefore: LONG_AGO, liveAliases });
    expect(plan.staleLeases).to.deep.equal([
      { key: `${UUID1}/0`, vm: 'detached', why: 'its device ua-vfwire-0 was detached from the running domain' },
    ]);
    // Not attached yet (the worker is still at it), or the domain's XML not asked: kept.
    delete ledger.leases[`${UUID1}/0`]!.attachedAt;
    expect(planGc({ ledger, running, links: [], notBefore: LONG_AGO, liveAliases }).staleLeases).to.deep.equal([]);
    ledger.leases[`${UUID1}/0`]!.attachedAt = NOW.toISOString();
    expect(
      planGc({ ledger, running, links: [], notBefore: LONG_AGO, liveAliases: new Map() }).staleLeases,
    ).to.deep.equal([]);
  });
});
