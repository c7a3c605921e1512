// Plans of the OVS overlay: a real host's first and second member of a VNI and their release
// (golden), what the ledger keeps, and the combinations the config refuses.

import { expect } from 'chai';
import { ValidationError } from '../../src/errors.js';
import { formatCommandWithInput } from '../../src/exec/step.js';
import { dropLeases, markActive, recordPlan } from '../../src/ledger/record.js';
import { emptyLedger } from '../../src/ledger/types.js';
import { planOvsBridge } from '../../src/overlay/ovs/host-bridge.js';
import { ovsHostOf, ovsOffloadOf } from '../../src/overlay/ovs/settings.js';
import { planPrepare, type PreparePlan } from '../../src/plan/prepare.js';
import { planRelease } from '../../src/plan/release.js';
import { expectGolden } from '../helpers/golden.js';
import {
  config,
  inventory,
  pf,
  REAL_CONFIG,
  request,
  SIM_CONFIG,
  SIM_LIBVIRT_CONFIG,
  UUID1,
  UUID2,
} from '../helpers/inputs.js';

const NOW = new Date('2026-12-04T12:00:00Z');
const OVS = REAL_CONFIG + 'overlay: ovs\n';
const text = (plan: PreparePlan) => plan.steps.map((s) => formatCommandWithInput(s.do)).join('\n') + '\n';

describe('OVS overlay plans', () => {
  it("a real host's OVS host setup on a fresh openvswitch-switch: offload with the policy, the secure bridge, the tunnel port (golden)", () => {
    const cfg = config(OVS);
    const steps = planOvsBridge(ovsHostOf(cfg), ovsOffloadOf(cfg), { otherConfig: {}, bridge: null, tunnel: null });
    expectGolden(
      'plans/ovs-real-host-setup.txt',
      '# do\n' +
        steps.map((s) => formatCommandWithInput(s.do) + '\n').join('') +
        '# undo, in reverse order\n' +
        [...steps]
          .reverse()
          .map((s) => formatCommandWithInput(s.undo!) + '\n')
          .join(''),
    );
    expect(steps.map((s) => s.kind)).to.deep.equal(['ovs-hw-offload', 'ovs-bridge', 'ovs-tunnel']);
  });

  it("a VNI's first member: admission, the VF, its representor as a port, the VNI's rules (golden); recorded as an OVS VNI", () => {
    const ledger = emptyLedger();
    const plan = planPrepare(request('web1', UUID1, [{ vni: 100 }]), inventory(pf(4)), ledger, config(OVS), NOW);
    expectGolden('plans/ovs-real-first-lease.txt', text(plan));
    recordPlan(ledger, plan);
    expect(ledger.vnis['100']!.ovs).to.deep.equal({ bridge: 'vfwovs', runDir: '/var/run/openvswitch' });
    // The port goes with the lease; the rules are no one's (the leave recomputes them).
    expect(ledger.leases[plan.leases[0]!.key]!.undo.map((c) => c.argv.slice(3).join(' '))).to.include(
      '--if-exists del-port vfwovs enp3s0f0r0',
    );
    expect(ledger.vnis['100']!.undo.some((c) => c.argv[0] === 'ovs-ofctl')).to.equal(false);
    // A rollback of this plan restores the rules before it: none.
    const rules = plan.steps.find((s) => s.kind === 'ovs-rules')!;
    expect(rules.undo!.stdin).to.equal('delete cookie=0x64/-1\n');
  });

  it('a second member rewrites the rules for both, undo back to the first alone; a release rewrites them without it (golden)', () => {
    const ledger = emptyLedger();
    const cfg = config(OVS);
    const first = planPrepare(request('web1', UUID1, [{ vni: 100 }]), inventory(pf(4)), ledger, cfg, NOW);
    recordPlan(ledger, first);
    markActive(ledger, [first.leases[0]!.key]);
    const second = planPrepare(request('web2', UUID2, [{ vni: 100 }]), inventory(pf(4)), ledger, cfg, NOW);
    expect(second.steps.some((s) => s.kind === 'admission')).to.equal(false);
    const rules = second.steps.find((s) => s.kind === 'ovs-rules')!;
    expect(rules.do.stdin).to.include('in_port=enp3s0f0r0').and.include('in_port=enp3s0f0r1');
    expect(rules.undo!.stdin).to.include('in_port=enp3s0f0r0').and.not.include('enp3s0f0r1');
    recordPlan(ledger, second);
    const release = planRelease(ledger, UUID2);
    expectGolden(
      'plans/ovs-real-release-second.txt',
      release.commands.map((c) => formatCommandWithInput(c)).join('\n') + '\n',
    );
    dropLeases(ledger, release.keys);
    // The last member's release leaves the VNI without a rule and without its admission.
    const last = planRelease(ledger, UUID1).commands.map((c) => formatCommandWithInput(c));
    expect(last[0]).to.match(
      /ovs-ofctl .* add-flows unix:\/var\/run\/openvswitch\/vfwovs.mgmt - <<< 'delete cookie=0x64\/-1'$/,
    );
    expect(last.join('\n')).to.include('del-port vfwovs enp3s0f0r0').and.include('delete chain inet vfwire vni_100');
  });

  it('a peer added to the config reaches a live VNI at its next start: admission rewritten, the rules carry it, recorded', () => {
    const ledger = emptyLedger();
    const first = planPrepare(request('web1', UUID1, [{ vni: 200 }]), inventory(pf(4)), ledger, config(OVS), NOW);
    recordPlan(ledger, first);
    expect(ledger.vnis['200']!.peers).to.deep.equal(['192.168.80.3', '192.168.80.4']);
    const fewer = config(REAL_CONFIG.replace(/.*hostc.*\n/, '') + 'overlay: ovs\n');
    const second = planPrepare(request('web2', UUID2, [{ vni: 200 }]), inventory(pf(4)), ledger, fewer, NOW);
    expect(second.peerUpdates).to.deep.equal([{ vni: 200, peers: ['192.168.80.3'] }]);
    expect(second.steps.find((s) => s.kind === 'ovs-rules')!.do.stdin).to.not.include('192.168.80.4');
    expect(second.steps.some((s) => s.kind === 'admission')).to.equal(true);
  });

  it('the sim runs ovs-vswitchd in the host netns, the representor there too', () => {
    const plan = planPrepare(
      request('web1', UUID1, [{ vni: 100 }]),
      inventory(pf(4)),
      emptyLedger(),
      config(SIM_CONFIG + 'overlay: ovs\novs: { run_dir: /run/vfwire-sim/a/ovs }\n'),
      NOW,
    );
    expect(plan.steps.find((s) => s.kind === 'rep-up')!.do.argv.slice(0, 3)).to.deep.equal(['ip', '-n', 'vfwsim-a']);
    expect(plan.steps.find((s) => s.kind === 'ovs-port-add')!.do.argv[1]).to.equal(
      '--db=unix:/run/vfwire-sim/a/ovs/db.sock',
    );
  });

  it('refuses what OVS cannot do here, in one line with the fix', () => {
    expect(() => config(SIM_LIBVIRT_CONFIG + 'overlay: ovs\n')).to.throw(
      ValidationError,
      /overlay ovs with underlay.netns vfwsim-a: OVS sends VXLAN from ovs-vswitchd's netns, .*; put the underlay there, or use overlay: bridge$/,
    );
    expect(() => config(OVS + 'ipsec: { mode: static }\n')).to.throw(
      ValidationError,
      /overlay ovs with ipsec.mode static and tc_policy skip_sw: .*; use tc_policy: skip_hw .*, or overlay: tc-flower with ipsec.mode static$/,
    );
    expect(() => config(OVS + 'tc_policy: skip_hw\nipsec: { mode: static }\n')).to.not.throw();
    expect(() => config(SIM_CONFIG + 'overlay: ovs\nipsec: { mode: static, offload: none }\n')).to.not.throw();
    expect(() =>
      config(
        OVS.replace('pfs: [{ name: enp3s0f0np0 }]', 'pfs: [{ name: enp3s0f0np0 }, { name: enp3s0f1np1 }]') +
          'failover: { mode: active-backup }\n',
      ),
    ).to.throw(ValidationError, /overlay ovs with failover active-backup: .*; use overlay: bridge$/);
    expect(() => config(OVS + 'ovs: { bridge: "a bridge" }\n')).to.throw(
      ValidationError,
      /ovs.bridge: must be a network interface name/,
    );
  });
});
