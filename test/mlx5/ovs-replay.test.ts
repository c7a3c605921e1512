// The OVS overlay's real-host plans through the strict host model (mlx5 plus Open vSwitch): host
// setup, OVS's own host setup with hw-offload, a VNI's first and second member and a release, in
// the order an operator's host runs them; then what each of vfwire's datapath flows becomes in tc
// and whether the eswitch runs it; and the IPsec ordering that makes vfwire refuse OVS offload
// beside IPsec packet offload.

import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../../src/exec/step.js';
import { epochKeys, keyFingerprint } from '../../src/ipsec/keys.js';
import { renderPeerSas } from '../../src/ipsec/render-static.js';
import { xfrmForm } from '../../src/ipsec/xfrm-form.js';
import { markActive, recordPlan } from '../../src/ledger/record.js';
import { emptyLedger } from '../../src/ledger/types.js';
import { planPrepare } from '../../src/plan/prepare.js';
import { FIXTURES } from '../helpers/golden.js';
import { config, inventory, pf, REAL_CONFIG, request, UUID1, UUID2 } from '../helpers/inputs.js';
import { Mlx5Host } from './model.js';
import type { OvsPacket } from './ovs-rules.js';
import { commandsFromPlanText, replay } from './replay.js';

const PF = 'enp3s0f0np0';
const A = '192.168.80.2';
const B = '192.168.80.3';
const RUN = '/var/run/openvswitch';
const WEB1 = '52:54:00:00:00:01';
const WEB2 = '52:54:00:00:00:02';
const REMOTE = '52:54:00:00:00:99';
const BCAST = 'ff:ff:ff:ff:ff:ff';
const NOW = new Date('2026-12-04T12:00:00Z');

const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
const doHalf = (text: string) => commandsFromPlanText(text.split('# undo')[0]!);

function host(otherConfig?: Record<string, string>): Mlx5Host {
  return new Mlx5Host({
    kernel: '6.12',
    iproute2: '6.15',
    pfs: [{ name: PF, pci: '0000:03:00.0', totalVfs: 4, numVfs: 0, eswitch: 'legacy', up: false }],
    ovs: { runDir: RUN, ...(otherConfig ? { otherConfig } : {}) },
  });
}

function accept(h: Mlx5Host, commands: Command[], what: string): void {
  const r = replay(h, commands);
  if (!r.ok)
    expect.fail(
      `${what}: command ${r.index} refused (${r.refusal.rule}): ${r.command.argv.join(' ')}: ${r.refusal.stderr}`,
    );
}

/** Host setup, OVS's host setup, and web1 on VNI 100 (peer B), as the golden plans have them. */
function withFirstMember(h = host()): Mlx5Host {
  accept(h, doHalf(fixture('failover/host-a-plain.txt')), 'host setup');
  accept(h, doHalf(fixture('plans/ovs-real-host-setup.txt')), 'OVS host setup');
  accept(h, commandsFromPlanText(fixture('plans/ovs-real-first-lease.txt')), 'web1 start');
  return h;
}

function ipsecUp(): Command[] {
  const seed = { seed: Buffer.alloc(32, 0x3c), id: keyFingerprint(Buffer.alloc(32, 0x3c)) };
  const form = xfrmForm({ kernel: [6, 12], iproute2: [6, 15], switchdev: true }, 'packet');
  return renderPeerSas({
    peerName: 'hostb',
    local: A,
    peer: B,
    uplink: PF,
    keys: epochKeys(seed, 1, [A, B]),
    lookahead: [],
    priority: 12,
    form,
  }).map((s) => s.do);
}

const fromWeb1 = (dlDst: string, arp = false): OvsPacket => ({
  inPort: 'enp3s0f0r0',
  dlSrc: WEB1,
  dlDst,
  ...(arp ? { arpSha: WEB1 } : {}),
});
const fromB = (dlDst: string, src = B, id = 100): OvsPacket => ({
  inPort: 'vfwtun',
  dlSrc: REMOTE,
  dlDst,
  tunnel: { id, src, dst: A },
});

/** web2 joining VNI 100 after web1, as the planner makes it (its golden release is ovs-real-release-second). */
const second = (() => {
  const ledger = emptyLedger();
  const cfg = config(REAL_CONFIG + 'overlay: ovs\n');
  const first = planPrepare(request('web1', UUID1, [{ vni: 100 }]), inventory(pf(4)), ledger, cfg, NOW);
  recordPlan(ledger, first);
  markActive(ledger, [first.leases[0]!.key]);
  return planPrepare(request('web2', UUID2, [{ vni: 100 }]), inventory(pf(4)), ledger, cfg, NOW);
})();

describe('OVS real-host plans through the strict host model', () => {
  it('host setup, OVS host setup with hw-offload, a first member: accepted, the port open, the flow API on with skip_sw', () => {
    const h = withFirstMember();
    const ovs = h.state().ovs!;
    expect(ovs.flowApi).to.deep.equal({ tcPolicy: 'skip_sw' });
    expect(ovs.warnings).to.deep.equal([]);
    const br = ovs.bridges['vfwovs']!;
    expect(br.failMode).to.equal('secure');
    expect(br.ports['enp3s0f0r0']!.ofport).to.be.greaterThan(0);
    expect(br.ports['vfwtun']).to.include({ type: 'vxlan' });
    expect(br.rules).to.have.length(7);
    // OVS's datapath device for the flow-based port, with the ingress qdisc its tc rules need.
    expect(h.state().links['vxlan_sys_4789']).to.include({ kind: 'vxlan', ingress: true });
    expect(h.state().links['enp3s0f0r0']).to.include({ ingress: true, up: true, mtu: 9000 });
  });

  it("each of the VNI's datapath flows in the eswitch: out to the one peer, in from it, drops of spoofs and strangers", () => {
    const h = withFirstMember();
    const out = h.ovsDatapath(fromWeb1(REMOTE));
    expect(out.outputs).to.deep.equal([{ port: 'vfwtun', tunnel: { id: 100, dst: B } }]);
    expect(out.runs, out.refusal?.stderr).to.equal('in_hw');
    expect(out.filter!.match).to.deep.include({ src_mac: WEB1, dst_mac: REMOTE });
    const back = h.ovsDatapath(fromB(WEB1));
    expect(back.outputs).to.deep.equal([{ port: 'enp3s0f0r0' }]);
    expect(back.runs, back.refusal?.stderr).to.equal('in_hw');
    expect(back.filter!.match).to.deep.include({ enc_key_id: '100', enc_src_ip: B, enc_dst_port: '4789' });
    // A spoofed source: no rule admits it, and the drop runs in hardware.
    const spoof = h.ovsDatapath({ ...fromWeb1(REMOTE), dlSrc: '52:54:00:00:00:66' });
    expect(spoof.outputs).to.deep.equal([]);
    expect(spoof.runs, spoof.refusal?.stderr).to.equal('in_hw');
    // VXLAN from a stranger, or of another VNI: dropped. Which eswitch takes a decap-and-drop rule
    // on the tunnel device (indirect block) is not modelled: the model says unknown, not in_hw.
    for (const p of [fromB(WEB1, '192.168.80.9'), fromB(WEB1, B, 200)]) {
      const d = h.ovsDatapath(p);
      expect(d.outputs, JSON.stringify(p)).to.deep.equal([]);
      expect(d.runs, JSON.stringify(p)).to.equal('unknown');
    }
  });

  it("a second member: the flood goes to it and the peer in one rule; its release leaves web1's rules, its port gone", () => {
    const h = withFirstMember();
    accept(
      h,
      second.steps.map((x) => x.do),
      'web2 start',
    );
    const flood = h.ovsDatapath(fromWeb1(BCAST));
    expect(flood.outputs).to.deep.equal([{ port: 'enp3s0f0r1' }, { port: 'vfwtun', tunnel: { id: 100, dst: B } }]);
    expect(flood.runs, flood.refusal?.stderr).to.equal('in_hw');
    expect(h.ovsDatapath(fromB(WEB2)).outputs).to.deep.equal([{ port: 'enp3s0f0r1' }]);
    accept(h, commandsFromPlanText(fixture('plans/ovs-real-release-second.txt')), 'web2 stop');
    const br = h.state().ovs!.bridges['vfwovs']!;
    expect(Object.keys(br.ports).sort()).to.deep.equal(['enp3s0f0r0', 'vfwtun']);
    expect(br.rules).to.have.length(7);
    expect(h.state().pfs[PF]!.vfs[1]!.mac).to.equal('00:00:00:00:00:00');
  });

  it("ARP stays in OVS's kernel datapath: mlx5 matches no ARP field, and vfwire checks the sender", () => {
    const h = withFirstMember();
    const arp = h.ovsDatapath(fromWeb1(BCAST, true));
    expect(arp.outputs).to.deep.equal([{ port: 'vfwtun', tunnel: { id: 100, dst: B } }]);
    expect(arp.runs).to.equal('kernel');
    expect(arp.refusal!.rule).to.equal('mlx5.tc.unsupported-key');
    const spoof = h.ovsDatapath({ ...fromWeb1(BCAST, true), arpSha: '52:54:00:00:00:66' });
    expect(spoof.outputs).to.deep.equal([]);
  });

  it('a port OVS cannot open: add-port only warns (as OVS 3.1 does), and the rules naming it fail, so the start rolls back', () => {
    const h = withFirstMember();
    const add = `ovs-vsctl --db=unix:${RUN}/db.sock --timeout=10 --may-exist add-port vfwovs enp3s0f0r9`;
    accept(h, commandsFromPlanText(add), 'add-port of a missing device');
    expect(h.state().ovs!.warnings.join('\n')).to.match(
      /Error detected while setting up 'enp3s0f0r9': could not open network device/,
    );
    const r = replay(h, [
      {
        argv: ['ovs-ofctl', '-O', 'OpenFlow14', '--bundle', 'add-flows', `unix:${RUN}/vfwovs.mgmt`, '-'],
        stdin:
          'delete cookie=0xc8/-1\nadd cookie=0xc8,table=0,priority=100,in_port=enp3s0f0r9,dl_src=52:54:00:00:00:05,actions=drop\n',
      },
    ]);
    expect(r.ok ? 'accepted' : r.refusal.rule).to.equal('ovs.ofctl.unknown-port');
    if (!r.ok) expect(r.refusal.stderr).to.equal('ovs-ofctl: -:2: enp3s0f0r9: invalid or unknown port for in_port');
    // The bundle is all or nothing: VNI 100's rules are as they were.
    expect(h.state().ovs!.bridges['vfwovs']!.rules).to.have.length(7);
  });

  it('IPsec packet offload after OVS offloaded flows is refused (EBUSY), as vfwire refuses OVS skip_sw with IPsec; with skip_hw both work', () => {
    const offloaded = withFirstMember();
    expect(offloaded.ovsDatapath(fromWeb1(REMOTE)).runs).to.equal('in_hw');
    const r = replay(offloaded, ipsecUp());
    expect(r.ok ? 'accepted' : r.refusal.rule).to.equal('mlx5.ipsec.first-rule-while-tc-flows');

    // The same host with tc_policy skip_hw (vfwire's OVS + IPsec form): OVS's flows stay in tc's software path.
    const soft = host();
    accept(soft, doHalf(fixture('failover/host-a-plain.txt')), 'host setup');
    const setup = fixture('plans/ovs-real-host-setup.txt').replace('tc-policy=skip_sw', 'tc-policy=skip_hw');
    accept(soft, doHalf(setup), 'OVS host setup, skip_hw');
    accept(soft, ipsecUp(), 'ipsec up');
    accept(soft, commandsFromPlanText(fixture('plans/ovs-real-first-lease.txt')), 'web1 start');
    expect(soft.ovsDatapath(fromWeb1(REMOTE)).runs).to.equal('tc');
    expect(soft.state().filters.every((f) => !f.inHw)).to.equal(true);
  });

  it('OVS offload with IPsec the other way round (SAs first): a flood to a member and a peer is no eswitch rule', () => {
    const h = host();
    accept(h, doHalf(fixture('failover/host-a-plain.txt')), 'host setup');
    accept(h, ipsecUp(), 'ipsec up');
    accept(h, doHalf(fixture('plans/ovs-real-host-setup.txt')), 'OVS host setup');
    accept(h, commandsFromPlanText(fixture('plans/ovs-real-first-lease.txt')), 'web1 start');
    const one = h.ovsDatapath(fromWeb1(REMOTE));
    expect(one.runs, 'the encap alone goes through the IPsec TX tables').to.equal('in_hw');
    accept(
      h,
      second.steps.map((x) => x.do),
      'web2 start',
    );
    const both = h.ovsDatapath(fromWeb1(BCAST));
    expect(both.outputs).to.have.length(2);
    expect(both.runs).to.equal('kernel');
    expect(both.refusal!.rule).to.equal('mlx5.tc.ipsec-encap-multi-dest');
  });

  it('hw-offload already on with another policy: OVS keeps the first (a restart applies it), and the model says so', () => {
    const h = host({ 'hw-offload': 'true', 'tc-policy': 'none' });
    accept(
      h,
      commandsFromPlanText(
        `ovs-vsctl --db=unix:${RUN}/db.sock --timeout=10 set Open_vSwitch . other_config:tc-policy=skip_sw`,
      ),
      'a policy change',
    );
    expect(h.state().ovs!.flowApi).to.deep.equal({ tcPolicy: 'none' });
    expect(h.state().ovs!.warnings.join('\n')).to.match(/only after a restart/);
  });
});
