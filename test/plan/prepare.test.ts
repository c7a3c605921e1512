import { expect } from 'chai';
import { ResourceError, ValidationError } from '../../src/errors.js';
import { dropLeases, recordPeerUpdates, recordPlan } from '../../src/ledger/record.js';
import { emptyLedger, type LedgerData } from '../../src/ledger/types.js';
import { planPrepare, type PreparePlan } from '../../src/plan/prepare.js';
import { planRelease, planReleaseKeys } from '../../src/plan/release.js';
import { formatCommand } from '../../src/exec/step.js';
import { repUnguardScript } from '../../src/overlay/rep-guard.js';
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

const NOW = new Date('2026-11-26T12:00:00Z');
const text = (plan: PreparePlan) => plan.steps.map((s) => formatCommand(s.do)).join('\n') + '\n';

describe('planPrepare', () => {
  it('real backend, first lease of a VNI: overlay, VF MAC through the PF (no spoofchk/trust: mlx5 refuses them in switchdev), representor (golden)', () => {
    const host = pf(4);
    host.vfs[0]!.adminMac = '02:00:00:00:aa:01';
    const plan = planPrepare(
      request('web1', UUID1, [{ vni: 100 }]),
      inventory(host),
      emptyLedger(),
      config(REAL_CONFIG),
      NOW,
    );
    expectGolden('plans/real-first-lease.txt', text(plan));
    // The undo puts back the MAC the PF held for the VF before the lease.
    expect(plan.steps.find((s) => s.kind === 'vf-config')!.undo!.argv.join(' ')).to.equal(
      'ip link set dev enp3s0f0np0 vf 0 mac 02:00:00:00:aa:01',
    );
    expect(plan.leases).to.have.length(1);
    expect(plan.leases[0]).to.include({
      pf: 'enp3s0f0np0',
      vf: 0,
      rep: 'enp3s0f0r0',
      vni: 100,
      mtu: 9000,
      state: 'preparing',
    });
  });

  it('sim backend runs everything in the host netns and sets the MAC on the VF netdev (golden)', () => {
    const plan = planPrepare(
      request('web1', UUID1, [{ vni: 100 }]),
      inventory(pf(4)),
      emptyLedger(),
      config(SIM_CONFIG),
      NOW,
    );
    expectGolden('plans/sim-first-lease.txt', text(plan));
    expect(
      plan.steps.every(
        (s) =>
          s.do.argv.slice(0, 3).join(' ') === `${s.do.argv[0]} -n vfwsim-a` ||
          s.do.argv.slice(0, 4).join(' ') === 'ip netns exec vfwsim-a',
      ),
    ).to.equal(true);
  });

  it('sim libvirt host: VXLAN made beside the underlay, moved to the root netns; no VF netdev step (golden)', () => {
    const inv = pf(2);
    for (const vf of inv.vfs) {
      delete vf.netdev;
      vf.rep = `vfwsimt${vf.index}`;
    }
    const plan = planPrepare(
      request('vm1', UUID1, [{ vni: 100 }]),
      inventory(inv),
      emptyLedger(),
      config(SIM_LIBVIRT_CONFIG),
      NOW,
    );
    expectGolden('plans/sim-libvirt-first-lease.txt', text(plan));
    expect(plan.steps.map((s) => s.kind)).to.not.include('vf-config');
  });

  it('replicates a VNI only to the peers that carry it', () => {
    const plan = planPrepare(
      request('db1', UUID1, [{ vni: 200 }, { vni: 300 }]),
      inventory(pf(4)),
      emptyLedger(),
      config(REAL_CONFIG),
      NOW,
    );
    const fdb = plan.steps.filter((s) => s.kind === 'vxlan-peer').map((s) => s.device);
    expect(fdb).to.deep.equal(['vfwvx200 192.168.80.3', 'vfwvx200 192.168.80.4', 'vfwvx300 192.168.80.3']);
  });

  it('a VNI already in use gets no second overlay; only the member joins', () => {
    const ledger = withVm(emptyLedger(), 'web1', UUID1, [{ vni: 100 }]);
    const plan = planPrepare(
      request('web2', UUID2, [{ vni: 100 }]),
      inventory(pf(4)),
      ledger,
      config(REAL_CONFIG),
      NOW,
    );
    // The representor is guarded (source MAC) before it joins the bridge.
    expect(plan.steps.map((s) => s.kind)).to.deep.equal(['rep-guard', 'vf-config', 'rep-join']);
    expect(plan.leases[0]!.vf).to.equal(1);
  });

  it('brings a live VNI in line with peers added to or removed from the config since', () => {
    const ledger = withVm(emptyLedger(), 'web1', UUID1, [{ vni: 100 }]);
    const cfg = config(
      REAL_CONFIG.replace('{ name: hostb, address: 192.168.80.3 }', '{ name: hostd, address: 192.168.80.5 }'),
    );
    const plan = planPrepare(request('web2', UUID2, [{ vni: 100 }]), inventory(pf(4)), ledger, cfg, NOW);
    expect(plan.steps.filter((s) => s.kind.startsWith('vxlan-peer')).map((s) => formatCommand(s.do))).to.deep.equal([
      'bridge fdb append 00:00:00:00:00:00 dev vfwvx100 dst 192.168.80.5',
      'bridge fdb del 00:00:00:00:00:00 dev vfwvx100 dst 192.168.80.3',
    ]);
    expect(plan.peerUpdates).to.deep.equal([{ vni: 100, peers: ['192.168.80.5'] }]);
    recordPlan(ledger, plan);
    recordPeerUpdates(ledger, plan);
    expect(ledger.vnis['100']!.peers).to.deep.equal(['192.168.80.5']);
    // Tearing the VNI down removes the new entry too (the old one's delete finds it gone).
    expect(planRelease(ledger, UUID1).commands.length).to.equal(3);
    const last = planReleaseKeys(ledger, [`${UUID1}/0`, `${UUID2}/0`]).commands.map(formatCommand);
    expect(last).to.include('bridge fdb del 00:00:00:00:00:00 dev vfwvx100 dst 192.168.80.5');
    // Unchanged peers: nothing to do.
    expect(
      planPrepare(
        request('web3', '3c3c3c3c-4b5a-4c6d-8e7f-0a1b2c3d4e5f', [{ vni: 100 }]),
        inventory(pf(4)),
        ledger,
        cfg,
        NOW,
      ).peerUpdates,
    ).to.deep.equal([]);
  });

  it('two interfaces on one new VNI create its overlay once and take two VFs', () => {
    const plan = planPrepare(
      request('web1', UUID1, [{ vni: 100 }, { vni: 100 }]),
      inventory(pf(4)),
      emptyLedger(),
      config(REAL_CONFIG),
      NOW,
    );
    expect(plan.steps.filter((s) => s.kind === 'vxlan-create')).to.have.length(1);
    expect(plan.leases.map((l) => l.vf)).to.deep.equal([0, 1]);
  });

  it('skips VFs outside the pool and VFs without a representor', () => {
    const inv = pf(6);
    delete inv.vfs[2]!.rep;
    const cfg = config(REAL_CONFIG.replace('pfs: [{ name: enp3s0f0np0 }]', 'pfs: [{ name: enp3s0f0np0, vfs: "2-5" }]'));
    const plan = planPrepare(request('web1', UUID1, [{ vni: 100 }]), inventory(inv), emptyLedger(), cfg, NOW);
    expect(plan.leases[0]!.vf).to.equal(3);
  });

  it('honours the PF the metadata names, and refuses one not in the config', () => {
    const cfg = config(
      REAL_CONFIG.replace('pfs: [{ name: enp3s0f0np0 }]', 'pfs: [{ name: enp3s0f0np0 }, { name: enp3s0f1np1 }]'),
    );
    const inv = inventory(pf(2), pf(2, 'enp3s0f1np1', 1));
    expect(
      planPrepare(request('web1', UUID1, [{ vni: 1, pf: 'enp3s0f1np1' }]), inv, emptyLedger(), cfg, NOW).leases[0]!.pf,
    ).to.equal('enp3s0f1np1');
    expect(() => planPrepare(request('web1', UUID1, [{ vni: 1, pf: 'eth9' }]), inv, emptyLedger(), cfg, NOW)).to.throw(
      ValidationError,
      /vm web1: interface 0: pf: "eth9" is not a PF/,
    );
  });

  it('refuses when every VF is leased, naming the PF', () => {
    const ledger = withVm(emptyLedger(), 'web1', UUID1, [{ vni: 100 }, { vni: 100 }]);
    expect(() =>
      planPrepare(request('web2', UUID2, [{ vni: 100 }]), inventory(pf(2)), ledger, config(REAL_CONFIG), NOW),
    ).to.throw(
      ResourceError,
      'vm web2: interface 0: no free VF on enp3s0f0np0 (2 usable, all leased; see vfwire status)',
    );
  });

  it('refuses a MAC another VM already uses on the same VNI', () => {
    const ledger = withVm(emptyLedger(), 'web1', UUID1, [{ vni: 100, mac: '52:54:00:aa:bb:cc' }]);
    const clone = request('web1-clone', UUID2, [{ vni: 100, mac: '52:54:00:aa:bb:cc' }]);
    expect(() => planPrepare(clone, inventory(pf(4)), ledger, config(REAL_CONFIG), NOW)).to.throw(
      ValidationError,
      'vm web1-clone: interface 0: mac: 52:54:00:aa:bb:cc is already used on VNI 100 by vm web1',
    );
    const elsewhere = request('web1-clone', UUID2, [{ vni: 200, mac: '52:54:00:aa:bb:cc' }]);
    expect(planPrepare(elsewhere, inventory(pf(4)), ledger, config(REAL_CONFIG), NOW).leases).to.have.length(1);
  });

  it('refuses an MTU different from the other members of the VNI', () => {
    const ledger = withVm(emptyLedger(), 'web1', UUID1, [{ vni: 100 }]);
    expect(() =>
      planPrepare(
        request('web2', UUID2, [{ vni: 100, mtu: 1500 }]),
        inventory(pf(4)),
        ledger,
        config(REAL_CONFIG),
        NOW,
      ),
    ).to.throw(
      ValidationError,
      'vm web2: interface 0: mtu: 1500 differs from the 9000 of vm web1 on VNI 100 (one L2 segment needs one MTU)',
    );
    expect(
      planPrepare(request('web2', UUID2, [{ vni: 200, mtu: 1500 }]), inventory(pf(4)), ledger, config(REAL_CONFIG), NOW)
        .leases,
    ).to.have.length(1);
  });

  it('refuses an MTU the overlay cannot carry, naming the limit', () => {
    const req = request('web1', UUID1, [{ vni: 100, mtu: 9167 }]);
    expect(() => planPrepare(req, inventory(pf(1)), emptyLedger(), config(REAL_CONFIG), NOW)).to.throw(
      ValidationError,
      /interface 0: mtu: 9167 does not fit the overlay \(at most 9166/,
    );
    expect(
      planPrepare(
        request('web1', UUID1, [{ vni: 100, mtu: 9166 }]),
        inventory(pf(1)),
        emptyLedger(),
        config(REAL_CONFIG),
        NOW,
      ).leases[0]!.mtu,
    ).to.equal(9166);
  });

  it('fails closed: encrypt=required towards peers without IPsec is refused', () => {
    const req = request('web1', UUID1, [{ vni: 100, encrypt: 'required' }]);
    expect(() => planPrepare(req, inventory(pf(1)), emptyLedger(), config(REAL_CONFIG), NOW)).to.throw(
      ValidationError,
      /vm web1: interface 0: encrypt: required, but VNI 100 reaches peer\(s\) hostb/,
    );
  });

  it('encrypt=required on a VNI that never leaves the host needs no IPsec', () => {
    const cfg = config(
      REAL_CONFIG.replace(/peers:[\s\S]*/, 'peers: [{ name: hostc, address: 192.168.80.4, vnis: [200] }]\n'),
    );
    const plan = planPrepare(
      request('web1', UUID1, [{ vni: 100, encrypt: 'required' }]),
      inventory(pf(1)),
      emptyLedger(),
      cfg,
      NOW,
    );
    expect(plan.steps.some((s) => s.kind === 'vxlan-peer')).to.equal(false);
  });
});

describe('tc-flower overlay plans', () => {
  const TC = REAL_CONFIG + 'overlay: tc-flower\n';

  /** A ledger in which `ipsec up` installed SAs to both peers. */
  const ipsecUpLedger = () => {
    const ledger = emptyLedger();
    const sa = (dir: 'out' | 'in', peer: string, spi: number) => ({
      dir,
      src: dir === 'out' ? '192.168.80.2' : peer,
      dst: dir === 'out' ? peer : '192.168.80.2',
      spi,
      reqid: spi,
    });
    const up = (peer: string, n: number) => ({
      epoch: 1,
      sas: [sa('out', peer, n), sa('in', peer, n + 1)],
      installedAt: NOW.toISOString(),
      undo: [],
    });
    ledger.ipsec = { peers: { hostb: up('192.168.80.3', 0x1000), hostc: up('192.168.80.4', 0x2000) }, used: [] };
    return ledger;
  };

  it('with IPsec, every start needs its VNI\'s SAs, encrypt="off" too, and none while the rules are down for IPsec', () => {
    const ipsec = config(TC + 'ipsec: { mode: static }\n');
    expect(() =>
      planPrepare(request('web1', UUID1, [{ vni: 100, encrypt: 'off' }]), inventory(pf(4)), emptyLedger(), ipsec, NOW),
    ).to.throw(
      ValidationError,
      /^vm web1: interface 0: overlay tc-flower with IPsec \(tc rules only after the SAs\), but no IPsec SAs to hostb are up \(run: vfwire ipsec up\)$/,
    );
    const ledger = ipsecUpLedger();
    expect(
      planPrepare(request('web1', UUID1, [{ vni: 100, encrypt: 'off' }]), inventory(pf(4)), ledger, ipsec, NOW)
        .steps[0]!.kind,
    ).to.equal('ipsec-check');
    ledger.ipsec!.tcRulesDown = true;
    expect(() => planPrepare(request('web1', UUID1, [{ vni: 100 }]), inventory(pf(4)), ledger, ipsec, NOW)).to.throw(
      ValidationError,
      /the tc-flower rules are down until IPsec is back/,
    );
  });

  it('tc_policy says where the rules run: skip_sw (default) the NIC, skip_hw the kernel (which may then encrypt on the CPU), none either', () => {
    const flags = (yaml: string) => {
      const plan = planPrepare(
        request('web1', UUID1, [{ vni: 100 }]),
        inventory(pf(4)),
        emptyLedger(),
        config(TC + yaml),
        NOW,
      );
      return [
        ...new Set(
          plan.steps
            .filter((st) => st.kind === 'tcf-rule')
            .map((st) => st.do.argv.find((a) => a.startsWith('skip_')) ?? 'no flag'),
        ),
      ];
    };
    expect(flags('')).to.deep.equal(['skip_sw']);
    expect(flags('tc_policy: skip_hw\n')).to.deep.equal(['skip_hw']);
    expect(flags('tc_policy: none\n')).to.deep.equal(['no flag']);
    expect(() => config(TC + 'tc_policy: none\nipsec: { mode: static, offload: none }\n')).to.throw(
      ValidationError,
      /use ipsec.offload: packet, tc_policy: skip_hw/,
    );
    const cpu = config(TC + 'tc_policy: skip_hw\nipsec: { mode: static, offload: none }\n');
    const ledger = ipsecUpLedger();
    const plan = planPrepare(request('web1', UUID1, [{ vni: 100 }]), inventory(pf(4)), ledger, cpu, NOW);
    recordPlan(ledger, plan);
    expect(ledger.vnis['100']!.tc).to.deep.include({ underlayAddress: '192.168.80.2', policy: 'skip_hw' });
    // No eswitch, no one-destination rule: a second member under IPsec is fine in the kernel.
    expect(() =>
      planPrepare(request('web2', UUID2, [{ vni: 100 }]), inventory(pf(4)), ledger, cpu, NOW),
    ).not.to.throw();
  });

  it("refuses tc-flower with IKEv2: vfwire cannot order strongSwan's SA installs around the rules", () => {
    expect(() => config(TC + 'ipsec: { mode: ikev2 }\n')).to.throw(
      ValidationError,
      /overlay tc-flower with ipsec.mode ikev2: mlx5 refuses the first SA while tc rules are offloaded .*; use ipsec.mode: static, or overlay: bridge$/,
    );
  });

  it('with IPsec, refuses a VNI whose broadcast would fan out to the encrypted uplink and more (mlx5 refuses the rule)', () => {
    const ipsec = config(TC + 'ipsec: { mode: static }\n');
    const ledger = ipsecUpLedger();
    // VNI 100 has one peer (hostb); a first member replicates to it alone: fine.
    const first = planPrepare(
      request('web1', UUID1, [{ vni: 100, encrypt: 'off' }]),
      inventory(pf(4)),
      ledger,
      ipsec,
      NOW,
    );
    recordPlan(ledger, first);
    expect(() =>
      planPrepare(request('web2', UUID2, [{ vni: 100, encrypt: 'off' }]), inventory(pf(4)), ledger, ipsec, NOW),
    ).to.throw(
      ValidationError,
      /^VNI 100: broadcast from a member would go to 2 destinations, one of them the encrypted uplink; mlx5 refuses such a rule under IPsec \(esw_flow_dests_fwd_ipsec_check\)/,
    );
    // VNI 200 has two peers (hostb, hostc): refused at its first member.
    expect(() =>
      planPrepare(
        request('web3', UUID2, [{ vni: 200, encrypt: 'off' }]),
        inventory(pf(4)),
        ipsecUpLedger(),
        ipsec,
        NOW,
      ),
    ).to.throw(ValidationError, /VNI 200: broadcast from a member would go to 2 destinations/);
  });

  it("refuses tc-flower with IPsec in crypto or none mode: the eswitch encapsulates past the kernel's xfrm", () => {
    for (const offload of ['crypto', 'none'])
      expect(() => config(TC + `ipsec: { mode: static, offload: ${offload} }\n`)).to.throw(
        ValidationError,
        new RegExp(
          `overlay tc-flower with ipsec.offload ${offload}: the eswitch encapsulates VXLAN past the kernel's xfrm, so it would leave in clear; use ipsec.offload: packet, tc_policy: skip_hw \\(the kernel runs the rules\\), or overlay: bridge`,
        ),
      );
  });
  it('first and second VM of a VNI: VF rules, then the replication lists rewritten (golden)', () => {
    const ledger = emptyLedger();
    const first = planPrepare(request('web1', UUID1, [{ vni: 100 }]), inventory(pf(4)), ledger, config(TC), NOW);
    recordPlan(ledger, first);
    const second = planPrepare(request('web2', UUID2, [{ vni: 100 }]), inventory(pf(4)), ledger, config(TC), NOW);
    expectGolden('plans/tc-flower-two-vms.txt', text(first) + '# second VM\n' + text(second));
    expect(first.steps.some((s) => s.kind.startsWith('vxlan-') || s.kind.startsWith('bridge'))).to.equal(false);
    expect(ledger.vnis['100']!.tc).to.deep.include({ underlayAddress: '192.168.80.2' });
  });

  it("a leaving VM: the others' lists rewritten first, then its own rules go with its qdisc (golden)", () => {
    const ledger = emptyLedger();
    for (const [name, uuid] of [
      ['web1', UUID1],
      ['web2', UUID2],
    ] as const)
      recordPlan(ledger, planPrepare(request(name, uuid, [{ vni: 100 }]), inventory(pf(4)), ledger, config(TC), NOW));
    expectGolden(
      'plans/tc-flower-release.txt',
      planRelease(ledger, UUID1).commands.map(formatCommand).join('\n') + '\n',
    );
  });
});

describe('planRelease', () => {
  it('undoes a lease in reverse and keeps a VNI that still has members', () => {
    let ledger = withVm(emptyLedger(), 'web1', UUID1, [{ vni: 100 }]);
    ledger = withVm(ledger, 'web2', UUID2, [{ vni: 100 }]);
    const rel = planRelease(ledger, UUID2);
    expect(rel.commands.map(formatCommand)).to.deep.equal([
      'ip link set dev enp3s0f0r1 nomaster down',
      'ip link set dev enp3s0f0np0 vf 1 mac 00:00:00:00:00:00',
      // nft last (exec/nft-batch.ts nftLast): the guard outlives the member's other undo.
      `nft -f - <<< '${repUnguardScript('enp3s0f0r1', ledger.leases[`${UUID2}/0`]!.mac).trim()}'`,
    ]);
  });

  it('removes the overlay with its last member (golden)', () => {
    const ledger = withVm(emptyLedger(), 'web1', UUID1, [{ vni: 100 }]);
    expectGolden(
      'plans/real-last-release.txt',
      planRelease(ledger, UUID1).commands.map(formatCommand).join('\n') + '\n',
    );
    dropLeases(ledger, [`${UUID1}/0`]);
    expect(ledger.vnis).to.deep.equal({});
  });

  it('has nothing to do for an unknown VM (release before prepare, release twice)', () => {
    expect(planRelease(emptyLedger(), UUID1).commands).to.deep.equal([]);
  });
});

function withVm(ledger: LedgerData, name: string, uuid: string, ifaces: Parameters<typeof request>[2]): LedgerData {
  const plan = planPrepare(request(name, uuid, ifaces), inventory(pf(4)), ledger, config(REAL_CONFIG), NOW);
  recordPlan(ledger, plan);
  return ledger;
}
