import { expect } from 'chai';
import { recordPlan } from '../../src/ledger/record.js';
import { emptyLedger } from '../../src/ledger/types.js';
import { overlayFor } from '../../src/overlay/overlay.js';
import { planPrepare } from '../../src/plan/prepare.js';
import { leaseUndoIn, splitUnlocked } from '../../src/plan/unlocked-steps.js';
import { config, inventory, pf, REAL_CONFIG, request, UUID1, UUID2 } from '../helpers/inputs.js';

const NOW = new Date('2026-11-26T12:00:00Z');

function split(
  yaml: string,
  ifaces: Parameters<typeof request>[2],
  before: Parameters<typeof request>[2] = [],
  beforeYaml = yaml,
) {
  const cfg = config(yaml);
  const ledger = emptyLedger();
  if (before.length)
    recordPlan(ledger, planPrepare(request('web1', UUID1, before), inventory(pf(4)), ledger, config(beforeYaml), NOW));
  const plan = planPrepare(request('web2', UUID2, ifaces), inventory(pf(4)), ledger, cfg, NOW);
  const parts = splitUnlocked(plan.steps, overlayFor(cfg).ownStepsUnlocked);
  return {
    plan,
    kinds: { locked: parts.locked.map((s) => s.kind), unlocked: parts.unlocked.map((s) => s.kind) },
    parts,
  };
}

describe('splitUnlocked: what of a start runs after the ledger lock', () => {
  it("bridge, a VNI's first lease: the VNI is made under the lock, the VF and its representor's join after it", () => {
    const { kinds, parts, plan } = split(REAL_CONFIG, [{ vni: 100 }]);
    expect(kinds.locked.at(-1)).to.equal('bridge-up');
    expect(kinds.locked).to.include.members(['admission', 'rep-guard', 'vxlan-create', 'bridge-create']);
    expect(kinds.unlocked).to.deep.equal(['vf-config', 'rep-join']);
    // A failure after the lock leaves the lease with the undo of what ran under it: its guard.
    const key = plan.leases[0]!.key;
    expect(leaseUndoIn(parts.locked, key)).to.deep.equal([parts.locked.find((s) => s.kind === 'rep-guard')!.undo]);
    expect(leaseUndoIn(plan.steps, key)).to.have.length(3);
  });

  it("bridge, a VNI's second lease: all of it is the lease's own, none under the lock", () => {
    const { kinds } = split(REAL_CONFIG, [{ vni: 100 }], [{ vni: 100 }]);
    expect(kinds).to.deep.equal({ locked: [], unlocked: ['rep-guard', 'vf-config', 'rep-join'] });
  });

  it('two interfaces on two new VNIs: the first one joins under the lock, since the second VNI is made after it', () => {
    const { kinds } = split(REAL_CONFIG, [{ vni: 100 }, { vni: 200 }]);
    expect(kinds.unlocked).to.deep.equal(['vf-config', 'rep-join']);
    expect(kinds.locked.filter((k) => k === 'rep-join')).to.have.length(1);
  });

  it('a live VNI whose peers changed: the update is shared, so what comes before it stays locked', () => {
    const { kinds } = split(
      REAL_CONFIG.replace('{ name: hostb, address: 192.168.80.3 }', '{ name: hostd, address: 192.168.80.5 }'),
      [{ vni: 100 }],
      [{ vni: 100 }],
      REAL_CONFIG,
    );
    expect(kinds.locked).to.include('vxlan-peer-remove');
    expect(kinds.unlocked).to.deep.equal(['vf-config', 'rep-join']);
  });

  it('tc-flower and OVS keep every step under the lock (a lease rule beside ipsec up/down; the rules rewritten whole)', () => {
    for (const overlay of ['tc-flower', 'ovs']) {
      const { kinds } = split(REAL_CONFIG + `overlay: ${overlay}\n`, [{ vni: 100 }], [{ vni: 100 }]);
      expect(kinds.unlocked, overlay).to.deep.equal([]);
      expect(kinds.locked.length, overlay).to.be.greaterThan(0);
    }
  });
});
