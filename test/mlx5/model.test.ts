// Unit tests of the mlx5 model itself: every rule refuses its bad case and accepts the good one.
// The command lines are vfwire's shapes (test/fixtures/ipsec, tc, plans, failover), varied per rule.

import { expect } from 'chai';
import type { Command } from '../../src/exec/step.js';
import { Mlx5Host, type HostFacts, type PfFacts } from './model.js';
import { Mlx5Refusal, UnmodeledCommand } from './refusal.js';
import { commandsFromPlanText, replay } from './replay.js';

const PF0 = 'enp3s0f0np0';
const PF1 = 'enp3s0f1np1';
const A = '192.168.80.2';
const B = '192.168.80.3';
const KEY128 = '0xc0af116b109abc6a7571594e96eebf724c80b5ac'; // 128-bit AES key + 32-bit salt
const KEY256 = `0x${'ab'.repeat(36)}`; // 256-bit AES key + 32-bit salt

function pf0(o: Partial<PfFacts> = {}): PfFacts {
  return {
    name: PF0,
    pci: '0000:03:00.0',
    totalVfs: 8,
    numVfs: 2,
    eswitch: 'switchdev',
    up: true,
    mtu: 9216,
    addresses: [`${A}/24`],
    ...o,
  };
}

function pf1(o: Partial<PfFacts> = {}): PfFacts {
  return { name: PF1, pci: '0000:03:00.1', totalVfs: 8, numVfs: 0, eswitch: 'switchdev', up: false, ...o };
}

/** A current switchdev host (Debian bookworm-backports: kernel 6.12, iproute2 6.15) unless told otherwise. */
function host(o: Partial<HostFacts> = {}, pf: Partial<PfFacts> = {}): Mlx5Host {
  return new Mlx5Host({ kernel: '6.12', iproute2: '6.15', pfs: [pf0(pf)], ...o });
}

const cmd = (line: string): Command => commandsFromPlanText(line)[0]!;
const run = (h: Mlx5Host, ...lines: string[]) => lines.forEach((l) => h.run(cmd(l)));

function refused(h: Mlx5Host, line: string, rule: string, errno?: string | null): Mlx5Refusal {
  try {
    h.run(cmd(line));
  } catch (e) {
    expect(e).to.be.instanceOf(Mlx5Refusal);
    const r = e as Mlx5Refusal;
    expect(r.rule, r.stderr).to.equal(rule);
    if (errno !== undefined) expect(r.errno).to.equal(errno);
    return r;
  }
  expect.fail(`accepted: ${line}`);
}

// --- xfrm command builders, in the golden files' shapes

interface SaOpts {
  src?: string;
  dst?: string;
  spi?: string;
  reqid?: string;
  mode?: string;
  aead?: string;
  dir?: 'in' | 'out';
  dev?: string;
  sel?: string;
  flags?: string;
  topDir?: boolean;
  extra?: string;
}

function sa(o: SaOpts = {}): string {
  const dir = o.dir ?? 'in';
  const [src, dst] = dir === 'in' ? [o.src ?? B, o.dst ?? A] : [o.src ?? A, o.dst ?? B];
  const body = [
    `xfrm state add src ${src} dst ${dst} proto esp spi ${o.spi ?? '0x3a474c59'} reqid ${o.reqid ?? '0x9a1ecd92'} mode ${o.mode ?? 'transport'}`,
    `aead ${o.aead ?? `rfc4106(gcm(aes)) ${KEY128} 128`}`,
    `offload packet dev ${o.dev ?? PF0} dir ${dir}`,
    o.topDir ? `dir ${dir}` : '',
    `sel ${o.sel ?? `src ${src} dst ${dst}`}`,
    o.flags ?? (dir === 'in' ? 'flag esn replay-window 64' : 'flag esn replay-window 0'),
    o.extra ?? '',
  ];
  return `ip -batch - <<< ${body.filter(Boolean).join(' ')}`;
}

const saOut = (o: SaOpts = {}) => sa({ spi: '0xc492f829', reqid: '0x63dfc0a7', ...o, dir: 'out' });

interface PolOpts {
  dir?: 'in' | 'out' | 'fwd';
  sel?: string;
  dev?: string;
  tmpl?: string;
  priority?: string;
  verb?: 'add' | 'update';
}

function policy(o: PolOpts = {}): string {
  const dir = o.dir ?? 'out';
  const [src, dst] = dir === 'out' ? [A, B] : [B, A];
  const sel = o.sel ?? `src ${src}/32 dst ${dst}/32 proto udp dport 4789`;
  const tmpl =
    o.tmpl ??
    `tmpl src ${src} dst ${dst} proto esp reqid ${dir === 'out' ? '0x63dfc0a7' : '0x9a1ecd92'} mode transport`;
  return `ip xfrm policy ${o.verb ?? 'update'} ${sel} offload packet dev ${o.dev ?? PF0} dir ${dir} ${tmpl} priority ${o.priority ?? '12'}`;
}

// --- tc builders (test/fixtures/tc shapes)

const TC_SETUP = [
  'ip link add vfwvxlan mtu 9166 type vxlan dstport 4789 external',
  'ip link set dev vfwvxlan up',
  'tc qdisc add dev vfwvxlan ingress',
  'tc qdisc add dev enp3s0f0r0 ingress',
];
const encapTo = (peer: string, mode = 'redirect') =>
  `action tunnel_key set id 100 src_ip ${A} dst_ip ${peer} dst_port 4789 nocsum action mirred egress ${mode} dev vfwvxlan`;
const TC_ENCAP_ONE = `tc filter add dev enp3s0f0r0 ingress pref 3 handle 0x1 protocol all flower skip_sw src_mac 52:54:00:12:34:01 ${encapTo(B)}`;
const TC_ENCAP_TWO = `tc filter add dev enp3s0f0r0 ingress pref 3 handle 0x1 protocol all flower skip_sw src_mac 52:54:00:12:34:01 ${encapTo(B, 'mirror')} ${encapTo('192.168.80.4')}`;
const TC_DECAP = `tc filter add dev vfwvxlan ingress pref 1 handle 0x30200 protocol all flower skip_sw enc_key_id 100 enc_src_ip ${B} enc_dst_ip ${A} enc_dst_port 4789 dst_mac 52:54:00:12:34:01 action tunnel_key unset action mirred egress redirect dev enp3s0f0r0`;

describe('mlx5 model', () => {
  describe('VF settings through the PF (ip link set PF vf N ...)', () => {
    it('sets a VF MAC in switchdev (eswitch.c mlx5_eswitch_set_vport_mac works in any mode)', () => {
      const h = host();
      run(h, `ip link set dev ${PF0} vf 0 mac 52:54:00:00:00:01`);
      expect(h.state().pfs[PF0]!.vfs[0]!.mac).to.equal('52:54:00:00:00:01');
    });

    it('refuses a multicast VF MAC with EINVAL', () => {
      refused(host(), `ip link set dev ${PF0} vf 0 mac 01:00:5e:00:00:01`, 'mlx5.esw.vf-mac-multicast', 'EINVAL');
    });

    it('refuses spoofchk in switchdev with EOPNOTSUPP, and the MAC of the same command stays applied (do_setvfinfo order)', () => {
      const h = host();
      const r = refused(
        h,
        `ip link set dev ${PF0} vf 1 mac 52:54:00:00:00:02 spoofchk off`,
        'mlx5.esw.spoofchk-legacy-only',
        'EOPNOTSUPP',
      );
      expect(r.stderr).to.equal('RTNETLINK answers: Operation not supported');
      expect(r.exitCode).to.equal(2);
      expect(h.state().pfs[PF0]!.vfs[1]!.mac).to.equal('52:54:00:00:00:02');
    });

    it('refuses trust and link state in switchdev; vlan 0 is a no-op, another vlan EOPNOTSUPP', () => {
      const h = host();
      refused(h, `ip link set dev ${PF0} vf 0 trust on`, 'mlx5.esw.trust-legacy-only', 'EOPNOTSUPP');
      refused(h, `ip link set dev ${PF0} vf 0 state enable`, 'mlx5.esw.vf-state-legacy-only', 'EOPNOTSUPP');
      refused(h, `ip link set dev ${PF0} vf 0 vlan 10`, 'mlx5.esw.vf-vlan-legacy-only', 'EOPNOTSUPP');
      run(h, `ip link set dev ${PF0} vf 0 vlan 0`);
    });

    it('accepts spoofchk and trust in legacy mode, and in switchdev before 5.13', () => {
      const legacy = host({}, { eswitch: 'legacy' });
      run(legacy, `ip link set dev ${PF0} vf 0 spoofchk off trust on`);
      expect(legacy.state().pfs[PF0]!.vfs[0]).to.include({ spoofchk: false, trust: true });
      run(host({ kernel: '5.10' }), `ip link set dev ${PF0} vf 0 spoofchk off`);
    });
  });

  describe('xfrm state: iproute2 and the xfrm core', () => {
    it('accepts the golden pair on kernel 6.12 / iproute2 6.15 (dir out SA, window 0)', () => {
      const h = host();
      run(h, sa(), saOut());
      const st = h.state();
      expect(st.states.map((s) => [s.offload?.dir, s.saDir, s.replayWindow])).to.deep.equal([
        ['in', 'in', 64],
        ['out', 'out', 0],
      ]);
      expect(st.pfs[PF0]!.ipsecTables).to.deep.equal({ rx4: 1, rx6: 0, tx: 1 });
    });

    it('refuses an output SA with a replay window once the kernel knows the SA direction (verify_replay, 6.10)', () => {
      const r = refused(
        host(),
        saOut({ flags: 'flag esn replay-window 64' }),
        'xfrm.sa-dir-out-replay-window',
        'EINVAL',
      );
      expect(r.stderr).to.equal('Error: Replay window should be 0 for output SA.\nCommand failed -:1');
      expect(r.exitCode).to.equal(1);
    });

    it('kernel < 6.10 drops the SA direction: a window on the output SA passes, ESN without one is refused', () => {
      run(host({ kernel: '6.6' }), saOut({ flags: 'flag esn replay-window 64' }));
      refused(host({ kernel: '6.6' }), saOut(), 'xfrm.esn-replay-window', 'EINVAL');
    });

    it('iproute2 < 6.11 refuses ESN without a window itself, and does not know the state "dir" keyword', () => {
      const r = refused(host({ iproute2: '6.10' }), saOut(), 'iproute2.xfrm-state.esn-needs-replay-window', null);
      expect(r.stderr).to.equal('Error: esn flag set without replay-window.');
      expect(r.exitCode).to.equal(255);
      refused(host({ iproute2: '6.10' }), sa({ topDir: true }), 'iproute2.xfrm-state.dir-needs-6.11', null);
      run(host({ iproute2: '6.15' }), sa({ topDir: true }));
      // without the SA direction, an output SA with a window is what iproute2 6.10 can say
      run(host({ iproute2: '6.10' }), saOut({ flags: 'flag esn replay-window 64' }));
    });

    it('packet offload needs iproute2 6.2 and kernel 6.2', () => {
      refused(host({ kernel: '6.12', iproute2: '6.1' }), sa(), 'iproute2.xfrm-state.offload-packet-needs-6.2', null);
      refused(
        host({ kernel: '6.1', iproute2: '6.15' }, { eswitch: 'legacy' }),
        sa(),
        'xfrm.packet-offload-needs-6.2',
        'EINVAL',
      );
    });

    it('refuses a duplicate SA (EEXIST) and deleting a missing one (ESRCH)', () => {
      const h = host();
      run(h, sa());
      refused(h, sa(), 'xfrm.state-exists', 'EEXIST');
      run(h, `ip xfrm state delete src ${B} dst ${A} proto esp spi 0x3a474c59`);
      expect(h.state().pfs[PF0]!.ipsecTables.rx4).to.equal(0);
      refused(h, `ip xfrm state delete src ${B} dst ${A} proto esp spi 0x3a474c59`, 'xfrm.state-not-found', 'ESRCH');
    });

    it('refuses TFC padding on an offloaded SA', () => {
      refused(host(), sa({ extra: 'tfcpad 16' }), 'xfrm.tfcpad-offload', 'EINVAL');
    });
  });

  describe('xfrm state: mlx5e_xfrm_validate_state', () => {
    it('takes rfc4106(gcm(aes)) with a 128-bit ICV only', () => {
      refused(host(), sa({ aead: `rfc4106(gcm(aes)) ${KEY128} 64` }), 'mlx5.ipsec.state-aes-gcm-icv16', 'EINVAL');
      const r = refused(host(), sa({ aead: `rfc4106(gcm(aes)) ${KEY128} 96` }), 'mlx5.ipsec.state-aes-gcm-icv16');
      expect(r.stderr).to.match(/^Error: mlx5_core: Only AES-GCM-ICV16 xfrm state may be offloaded\./);
    });

    it('takes 128- and 256-bit keys (plus salt), not 192', () => {
      run(host(), sa({ aead: `rfc4106(gcm(aes)) ${KEY256} 128` }));
      refused(
        host(),
        sa({ aead: `rfc4106(gcm(aes)) 0x${'cd'.repeat(28)} 128` }),
        'mlx5.ipsec.state-key-length',
        'EINVAL',
      );
    });

    it('takes transport and tunnel mode only', () => {
      run(host(), sa({ mode: 'tunnel' }));
      refused(host(), sa({ mode: 'beet' }), 'mlx5.ipsec.state-mode', 'EINVAL');
      refused(host({ ipsecCaps: { tunnel: false } }), sa({ mode: 'tunnel' }), 'mlx5.ipsec.state-tunnel-cap', 'EINVAL');
    });

    it('an inbound packet-offload SA with ESN needs a window of 32/64/128/256', () => {
      run(host(), sa({ flags: 'flag esn replay-window 128' }));
      refused(host(), sa({ flags: 'flag esn replay-window 100' }), 'mlx5.ipsec.state-replay-window', 'EINVAL');
    });

    it('needs a reqid in packet mode', () => {
      refused(host(), sa({ reqid: '0' }), 'mlx5.ipsec.state-reqid', 'EINVAL');
    });

    it('selector upper protocol: TCP/UDP from 6.6, UDP on TX only in 6.3-6.5', () => {
      run(host(), sa({ sel: `src ${B} dst ${A} proto udp dport 4789` }));
      refused(host(), sa({ sel: `src ${B} dst ${A} proto icmp` }), 'mlx5.ipsec.state-upper-proto', 'EINVAL');
      const legacy63 = (): Mlx5Host => host({ kernel: '6.3' }, { eswitch: 'legacy' });
      refused(
        legacy63(),
        sa({ sel: `src ${B} dst ${A} proto udp dport 4789` }),
        'mlx5.ipsec.state-upper-proto',
        'EINVAL',
      );
      run(legacy63(), saOut({ sel: `src ${A} dst ${B} proto udp dport 4789`, flags: 'flag esn replay-window 64' }));
    });

    it('UDP encapsulation: espinudp in transport mode only', () => {
      run(host(), sa({ extra: 'encap espinudp 4500 4500 0.0.0.0' }));
      refused(
        host(),
        sa({ mode: 'tunnel', extra: 'encap espinudp 4500 4500 0.0.0.0' }),
        'mlx5.ipsec.state-encap',
        'EINVAL',
      );
    });

    it('ESN needs the ESN capability, packet offload the packet capability', () => {
      refused(host({ ipsecCaps: { esn: false } }), sa(), 'mlx5.ipsec.state-esn-cap', 'EINVAL');
      refused(host({ ipsecCaps: { packet: false } }), sa(), 'mlx5.ipsec.state-packet-cap', 'EINVAL');
    });

    it('packet offload in switchdev before kernel 6.6 is refused (what the kernel answers is not modeled)', () => {
      refused(host({ kernel: '6.5' }), sa(), 'mlx5.ipsec.switchdev-needs-6.6', null);
      run(host({ kernel: '6.5' }, { eswitch: 'legacy' }), sa());
    });

    it('an offload to a netdev without xfrmdev_ops is EINVAL', () => {
      const h = host();
      run(h, 'ip link add vfwbr100 mtu 9166 type bridge');
      refused(h, sa({ dev: 'vfwbr100' }), 'xfrm.state-offload-no-xfrmdev-ops', 'EINVAL');
      refused(h, sa({ dev: 'nosuch0' }), 'iproute2.xfrm.offload-dev', null);
    });
  });

  describe('xfrm policy: mlx5e_xfrm_validate_policy and the xfrm core', () => {
    it('accepts the golden policies, and update replaces', () => {
      const h = host();
      run(h, policy(), policy({ dir: 'in' }), policy({ priority: '13' }));
      expect(h.state().policies.map((p) => [p.dir, p.priority])).to.deep.equal([
        ['in', 12],
        ['out', 13],
      ]);
      expect(h.state().pfs[PF0]!.ipsecTables).to.deep.equal({ rx4: 1, rx6: 0, tx: 1 });
    });

    it('refuses a second add (EEXIST) and deleting a missing one (ENOENT)', () => {
      const h = host();
      run(h, policy({ verb: 'add' }));
      refused(h, policy({ verb: 'add' }), 'xfrm.policy-exists', 'EEXIST');
      run(h, `ip xfrm policy delete src ${A}/32 dst ${B}/32 proto udp dport 4789 dir out`);
      refused(
        h,
        `ip xfrm policy delete src ${A}/32 dst ${B}/32 proto udp dport 4789 dir out`,
        'xfrm.policy-not-found',
        'ENOENT',
      );
    });

    it('refuses dir fwd, two templates, and the reserved priority', () => {
      refused(
        host(),
        policy({ dir: 'fwd', tmpl: `tmpl src ${B} dst ${A} proto esp reqid 1 mode transport` }),
        'mlx5.ipsec.policy-no-fwd',
        'EINVAL',
      );
      const two = `tmpl src ${A} dst ${B} proto esp reqid 1 mode transport tmpl src ${A} dst ${B} proto esp reqid 2 mode transport`;
      refused(host(), policy({ tmpl: two }), 'mlx5.ipsec.policy-one-template', 'EINVAL');
      refused(host(), policy({ priority: '4294967295' }), 'mlx5.ipsec.policy-prio', 'EINVAL');
      refused(host({ ipsecCaps: { prio: false } }), policy(), 'mlx5.ipsec.policy-prio', 'EINVAL');
    });

    it('reqid: required before 6.4; from 6.4 reqid 0 needs addresses or an upper protocol', () => {
      const noReqid = `tmpl src ${A} dst ${B} proto esp mode transport`;
      refused(
        host({ kernel: '6.3' }, { eswitch: 'legacy' }),
        policy({ tmpl: noReqid, sel: `src ${A}/32 dst ${B}/32` }),
        'mlx5.ipsec.policy-reqid',
        'EINVAL',
      );
      run(host(), policy({ tmpl: noReqid }));
      refused(
        host(),
        policy({ tmpl: noReqid, sel: 'src 0.0.0.0/0 dst 0.0.0.0/0' }),
        'mlx5.ipsec.policy-reqid',
        'EINVAL',
      );
    });

    it('upper protocol: UDP on out only in 6.3-6.5, TCP/UDP both ways from 6.6', () => {
      refused(
        host({ kernel: '6.3' }, { eswitch: 'legacy' }),
        policy({ dir: 'in' }),
        'mlx5.ipsec.policy-upper-proto',
        'EINVAL',
      );
      run(host({ kernel: '6.3' }, { eswitch: 'legacy' }), policy({ dir: 'out' }));
      run(host(), policy({ dir: 'in' }));
      refused(host(), policy({ sel: `src ${A}/32 dst ${B}/32 proto icmp` }), 'mlx5.ipsec.policy-upper-proto', 'EINVAL');
    });

    it('policy offload needs iproute2 6.2; before kernel 6.2 the offload attribute is ignored', () => {
      refused(host({ iproute2: '6.1' }), policy(), 'iproute2.xfrm-policy.offload-needs-6.2', null);
      const old = host({ kernel: '6.1' }, { eswitch: 'legacy' });
      run(old, policy());
      expect(old.state().policies[0]!.offload).to.equal(undefined);
      expect(old.state().warnings.join('\n')).to.match(/ignored/);
    });
  });

  describe('IPsec and TC on one eswitch (366e46242b8e, d1569537a837, c8e350e62fc5; v6.6)', () => {
    function withTc(h: Mlx5Host, ...rules: string[]): Mlx5Host {
      run(h, ...TC_SETUP, ...rules);
      return h;
    }

    it('refuses the first IPsec rule of a direction while offloaded TC flows exist (EBUSY)', () => {
      const h = withTc(host(), TC_ENCAP_ONE);
      const r = refused(h, sa(), 'mlx5.ipsec.first-rule-while-tc-flows', 'EBUSY');
      expect(r.stderr).to.equal('Error: mlx5_core: Device failed to offload this state.\nCommand failed -:1');
      refused(h, policy(), 'mlx5.ipsec.first-rule-while-tc-flows', 'EBUSY');
    });

    it('accepts TC after IPsec: a single encap destination goes through the IPsec TX tables', () => {
      const h = host();
      run(h, sa(), saOut(), policy(), policy({ dir: 'in' }));
      withTc(h, TC_ENCAP_ONE, TC_DECAP);
      const f = h.state().filters;
      expect(f.map((x) => [x.dev, x.inHw, x.viaIpsecTx])).to.deep.equal([
        ['enp3s0f0r0', true, true],
        ['vfwvxlan', true, false],
      ]);
    });

    it('refuses a rule forwarding to the encrypted uplink and elsewhere (esw_flow_dests_fwd_ipsec_check, EOPNOTSUPP)', () => {
      const h = host();
      run(h, saOut());
      const r = refused(withTc(h), TC_ENCAP_TWO, 'mlx5.tc.ipsec-encap-multi-dest', 'EOPNOTSUPP');
      expect(r.stderr).to.equal('RTNETLINK answers: Operation not supported\nWe have an error talking to the kernel');
      // without IPsec TX (only RX SAs) the same rule is offloaded
      const rx = host();
      run(rx, sa());
      withTc(rx, TC_ENCAP_TWO);
      expect(rx.state().filters[0]!.dests).to.have.length(2);
    });

    it('when the last TX SA/policy goes, encap rules point at the plain uplink again (mlx5_esw_ipsec_restore_dest_uplink)', () => {
      const h = host();
      run(h, saOut());
      withTc(h, TC_ENCAP_ONE);
      expect(h.state().filters[0]!.viaIpsecTx).to.equal(true);
      run(h, `ip xfrm state delete src ${A} dst ${B} proto esp spi 0xc492f829`);
      expect(h.state().filters[0]!.viaIpsecTx).to.equal(false);
      expect(h.state().filters[0]!.inHw).to.equal(true);
    });

    it('TC and IPsec packet offload exclude each other on the same netdev', () => {
      const h = host();
      run(h, sa(), `tc qdisc add dev ${PF0} ingress`);
      refused(
        h,
        `tc filter add dev ${PF0} ingress pref 1 handle 0x1 protocol all flower skip_sw dst_mac 52:54:00:12:34:01 action mirred egress redirect dev enp3s0f0r0`,
        'mlx5.tc.ipsec-on-same-netdev',
        'EBUSY',
      );
      const h2 = host();
      run(
        h2,
        `tc qdisc add dev ${PF0} ingress`,
        `tc filter add dev ${PF0} ingress pref 1 handle 0x1 protocol all flower skip_sw dst_mac 52:54:00:12:34:01 action mirred egress redirect dev enp3s0f0r0`,
      );
      refused(h2, sa(), 'mlx5.ipsec.tc-on-same-netdev', 'EBUSY');
    });
  });

  describe('link down flushes offloaded xfrm (net/xfrm/xfrm_device.c xfrm_dev_down)', () => {
    it('setLinkDown on the PF flushes its offloaded SAs and policies and restores the TC encap rules to the uplink', () => {
      const h = host();
      run(h, sa(), saOut(), policy(), policy({ dir: 'in' }), ...TC_SETUP, TC_ENCAP_ONE);
      run(
        h,
        `ip xfrm state add src ${A} dst 192.168.80.9 proto esp spi 0x10 reqid 1 mode transport aead rfc4106(gcm(aes)) ${KEY128} 128`,
      );
      h.setLinkDown(PF0);
      const st = h.state();
      expect(st.states.map((s) => s.spi)).to.deep.equal([0x10]); // the software SA stays
      expect(st.policies).to.deep.equal([]);
      expect(st.pfs[PF0]!.ipsecTables).to.deep.equal({ rx4: 0, rx6: 0, tx: 0 });
      expect(st.filters[0]!.viaIpsecTx).to.equal(false);
      // coming back up, the TC flows now block IPsec: the SAs cannot be re-added
      run(h, `ip link set dev ${PF0} up`);
      refused(h, sa(), 'mlx5.ipsec.first-rule-while-tc-flows', 'EBUSY');
    });

    it('ip link set dev PF down does the same', () => {
      const h = host();
      run(h, sa(), `ip link set dev ${PF0} down`);
      expect(h.state().states).to.deep.equal([]);
    });

    it('an active-backup bond going down flushes what was offloaded through it; others stay', () => {
      const h = new Mlx5Host({ kernel: '6.12', iproute2: '6.15', pfs: [pf0({ up: false, addresses: [] }), pf1()] });
      run(
        h,
        'ip link add bond0 type bond mode active-backup miimon 100',
        `ip link set dev ${PF0} master bond0`,
        'ip link set dev bond0 up',
      );
      run(h, sa({ dev: 'bond0' }), saOut({ dev: PF0 }));
      expect(h.state().states.map((s) => [s.offload?.dev, s.offload?.pf])).to.deep.equal([
        ['bond0', PF0],
        [PF0, PF0],
      ]);
      h.setLinkDown('bond0');
      expect(h.state().states.map((s) => s.offload?.dev)).to.deep.equal([PF0]);
    });
  });

  describe('bonding and VF LAG', () => {
    it('refuses to enslave a port that is up (EPERM); the bond opens it itself', () => {
      const h = host();
      run(h, 'ip link add bond0 type bond mode active-backup miimon 100');
      refused(h, `ip link set dev ${PF0} master bond0`, 'bonding.enslave-while-up', 'EPERM');
      run(h, `ip link set dev ${PF0} down`, `ip link set dev ${PF0} master bond0`);
      expect(h.state().links[PF0]).to.include({ master: 'bond0', up: true });
    });

    it('refuses policy offload on a bond (no xdo_dev_policy_add), and an SA on a bond without an active slave (ENODEV)', () => {
      const h = host({}, { up: false });
      run(h, 'ip link add bond0 type bond mode active-backup miimon 100', 'ip link set dev bond0 up');
      refused(h, sa({ dev: 'bond0' }), 'bonding.ipsec-no-active-slave', 'ENODEV');
      const r = refused(h, policy({ dev: 'bond0' }), 'xfrm.policy-offload-unsupported-dev', 'EINVAL');
      expect(r.stderr).to.equal('Error: Policy offload is not supported.');
    });

    it('forms VF LAG over both ports in one active-backup bond with both eswitches in switchdev', () => {
      const h = new Mlx5Host({ kernel: '6.12', iproute2: '6.15', pfs: [pf0({ up: false, numVfs: 0 }), pf1()] });
      run(h, 'ip link add bond0 type bond mode active-backup miimon 100', `ip link set dev ${PF0} master bond0`);
      expect(h.state().lag).to.deep.equal({ bond: 'bond0', active: false });
      run(h, `ip link set dev ${PF1} master bond0`);
      expect(h.state().lag).to.deep.equal({ bond: 'bond0', active: true });
      const mixed = new Mlx5Host({
        kernel: '6.12',
        iproute2: '6.15',
        pfs: [pf0({ up: false }), pf1({ eswitch: 'legacy' })],
      });
      run(
        mixed,
        'ip link add bond0 type bond mode active-backup miimon 100',
        `ip link set dev ${PF0} master bond0`,
        `ip link set dev ${PF1} master bond0`,
      );
      expect(mixed.state().lag).to.deep.equal({ bond: 'bond0', active: false });
    });
  });

  describe('tc flower offload', () => {
    it('refuses a filter without an ingress qdisc, a second add, and deleting a missing one', () => {
      const h = host();
      refused(h, TC_ENCAP_ONE, 'tc.no-parent-qdisc', 'EINVAL');
      run(h, ...TC_SETUP, TC_ENCAP_ONE);
      const r = refused(h, TC_ENCAP_ONE, 'tc.filter-exists', 'EEXIST');
      expect(r.stderr).to.equal('Error: Filter already exists.\nWe have an error talking to the kernel');
      run(h, TC_ENCAP_ONE.replace('filter add', 'filter replace'));
      run(h, 'tc filter del dev enp3s0f0r0 ingress pref 3 handle 0x1 protocol all flower');
      refused(
        h,
        'tc filter del dev enp3s0f0r0 ingress pref 3 handle 0x1 protocol all flower',
        'tc.filter-not-found',
        'ENOENT',
      );
    });

    it("skip_sw makes a driver refusal the filter's; without it the filter stays in software (not in_hw)", () => {
      const h = host();
      run(h, ...TC_SETUP, 'ip link add vfwbr100 type bridge');
      const line =
        'tc filter add dev enp3s0f0r0 ingress pref 5 handle 0x1 protocol all flower skip_sw action mirred egress redirect dev vfwbr100';
      refused(h, line, 'mlx5.tc.mirred-not-same-switch', 'EOPNOTSUPP');
      run(h, line.replace(' skip_sw', ''));
      expect(h.state().filters[0]).to.include({ inHw: false, skipSw: false });
    });

    it('a VXLAN decap filter must match enc_dst_port', () => {
      const h = host();
      run(h, ...TC_SETUP);
      refused(h, TC_DECAP.replace(' enc_dst_port 4789', ''), 'mlx5.tc.decap-needs-enc-dst-port', 'EOPNOTSUPP');
      run(h, TC_DECAP);
    });

    it('at most 32 forward destinations (MLX5_MAX_FLOW_FWD_VPORTS)', () => {
      const h = host({}, { totalVfs: 40, numVfs: 34 });
      run(h, 'tc qdisc add dev enp3s0f0r33 ingress');
      const to = (n: number) =>
        Array.from({ length: n }, (_, i) => `action mirred egress mirror dev enp3s0f0r${i}`).join(' ');
      run(h, `tc filter add dev enp3s0f0r33 ingress pref 1 handle 0x1 protocol all flower skip_sw ${to(32)}`);
      refused(
        h,
        `tc filter add dev enp3s0f0r33 ingress pref 2 handle 0x1 protocol all flower skip_sw ${to(33)}`,
        'mlx5.tc.max-fwd-dests',
        'EOPNOTSUPP',
      );
    });
  });

  describe('devlink', () => {
    it('refuses an eswitch mode change while TC flows are offloaded (EBUSY) or IPsec rules exist (EOPNOTSUPP)', () => {
      const h = host();
      run(h, ...TC_SETUP, TC_ENCAP_ONE);
      const r = refused(
        h,
        'devlink dev eswitch set pci/0000:03:00.0 mode legacy',
        'mlx5.esw.mode-busy-tc-flows',
        'EBUSY',
      );
      expect(r.stderr).to.equal(
        "Error: mlx5_core: Can't change mode, E-Switch is busy.\nkernel answers: Device or resource busy",
      );
      const i = host();
      run(i, sa());
      refused(
        i,
        'devlink dev eswitch set pci/0000:03:00.0 mode legacy',
        'mlx5.esw.mode-blocked-by-ipsec',
        'EOPNOTSUPP',
      );
      run(host(), 'devlink dev eswitch set pci/0000:03:00.0 mode legacy');
    });

    it('switchdev creates representors; before 5.9 it needed SR-IOV enabled', () => {
      const h = host({}, { eswitch: 'legacy' });
      expect(h.state().links['enp3s0f0r0']).to.equal(undefined);
      run(h, 'devlink dev eswitch set pci/0000:03:00.0 mode switchdev');
      expect(h.state().links['enp3s0f0r1']!.kind).to.equal('rep');
      refused(
        host({ kernel: '5.8' }, { eswitch: 'legacy', numVfs: 0 }),
        'devlink dev eswitch set pci/0000:03:00.0 mode switchdev',
        'mlx5.esw.switchdev-needs-sriov-pre-5.9',
        'EINVAL',
      );
    });

    it('flow_steering_mode: smfs refused in switchdev; from 6.17 no change at all in switchdev', () => {
      const set = (v: string) =>
        `devlink dev param set pci/0000:03:00.0 name flow_steering_mode value ${v} cmode runtime`;
      refused(host(), set('smfs'), 'mlx5.fs-mode.smfs-in-switchdev', 'EOPNOTSUPP');
      run(host(), set('dmfs'));
      refused(host({ kernel: '6.17' }), set('dmfs'), 'mlx5.fs-mode.switchdev-locked', 'EOPNOTSUPP');
      run(host({ kernel: '6.17' }, { eswitch: 'legacy' }), set('dmfs'));
    });
  });

  describe('sysfs', () => {
    const numvfs = `/sys/class/net/${PF0}/device/sriov_numvfs`;
    const autoprobe = `/sys/class/net/${PF0}/device/sriov_drivers_autoprobe`;

    it('sriov_numvfs: above totalvfs ERANGE, nonzero to nonzero EBUSY, the same count a no-op', () => {
      const h = host();
      refused(h, `tee ${numvfs} <<< 9`, 'pci.sriov-numvfs-range', 'ERANGE');
      const r = refused(h, `tee ${numvfs} <<< 4`, 'pci.sriov-numvfs-busy', 'EBUSY');
      expect(r.stderr).to.equal(`tee: ${numvfs}: Device or resource busy`);
      run(h, `tee ${numvfs} <<< 2`);
    });

    it('sriov_numvfs 0 removes the VFs, their settings and representors; N creates representors in switchdev', () => {
      const h = host();
      run(h, `ip link set dev ${PF0} vf 0 mac 52:54:00:00:00:01`, `tee ${numvfs} <<< 0`);
      expect(h.state().pfs[PF0]!.vfs).to.deep.equal({});
      expect(h.state().links['enp3s0f0r0']).to.equal(undefined);
      run(h, `tee ${numvfs} <<< 4`);
      expect(h.state().links['enp3s0f0r3']!.kind).to.equal('rep');
      expect(h.state().pfs[PF0]!.vfs[0]!.mac).to.equal('00:00:00:00:00:00');
    });

    it('sriov_drivers_autoprobe takes a kstrtobool value, else EINVAL', () => {
      const h = host();
      expect(h.state().pfs[PF0]!.driversAutoprobe).to.equal(true);
      run(h, `tee ${autoprobe} <<< 0`);
      expect(h.state().pfs[PF0]!.driversAutoprobe).to.equal(false);
      refused(h, `tee ${autoprobe} <<< 2`, 'pci.sriov-autoprobe-value', 'EINVAL');
    });
  });

  describe('strictness, batch and replay', () => {
    it('refuses commands it does not know', () => {
      const h = host();
      expect(() => h.run({ argv: ['ethtool', '-K', PF0, 'hw-tc-offload', 'on'] })).to.throw(UnmodeledCommand);
      refused(h, 'ip route add 10.0.0.0/8 dev enp3s0f0np0', 'model.unknown-command', null);
      refused(h, 'tee /sys/class/net/enp3s0f0np0/device/sriov_totalvfs <<< 4', 'model.unknown-command', null);
      refused(h, 'devlink dev eswitch set pci/0000:09:00.0 mode switchdev', 'model.unknown-command', null);
    });

    it('ip -batch - stops at the first failed line and names it', () => {
      const h = host();
      const lines = [
        sa().replace('ip -batch - <<< ', ''),
        saOut({ flags: 'flag esn replay-window 64' }).replace('ip -batch - <<< ', ''),
      ];
      try {
        h.run({ argv: ['ip', '-batch', '-'], stdin: `${lines.join('\n')}\n` });
        expect.fail('accepted');
      } catch (e) {
        expect((e as Mlx5Refusal).stderr).to.match(/\nCommand failed -:2$/);
      }
      expect(h.state().states).to.have.length(1);
    });

    it('replay() returns the final state, or the first refusal with its index and the state then', () => {
      const ok = replay(host(), commandsFromPlanText(`# ipsec\n${sa()}\n${saOut()}\n`));
      expect(ok.ok).to.equal(true);
      const bad = replay(
        host(),
        commandsFromPlanText([sa(), `ip link set dev ${PF0} vf 0 spoofchk off`, saOut()].join('\n')),
      );
      expect(bad.ok).to.equal(false);
      if (bad.ok) return;
      expect(bad.index).to.equal(1);
      expect(bad.refusal.rule).to.equal('mlx5.esw.spoofchk-legacy-only');
      expect(bad.state.states).to.have.length(1);
    });

    it('commandsFromPlanText splits CMD <<< INPUT into argv and stdin', () => {
      expect(commandsFromPlanText(`tee /sys/x <<< 0\nip link set dev a up\n`)).to.deep.equal([
        { argv: ['tee', '/sys/x'], stdin: '0\n' },
        { argv: ['ip', 'link', 'set', 'dev', 'a', 'up'] },
      ]);
    });
  });
});
