// The VNI overlay in the NIC's eswitch (`overlay: tc-flower`): no bridge and no per-VNI VXLAN
// device, but flower rules with `skip_sw` that mlx5 offloads, so a VF's traffic is encapsulated,
// replicated and decapsulated by the ConnectX without touching the host CPU. Renders steps;
// runs nothing. The kernel-path twin is bridge-overlay.ts.
//
// Shape of the rules (pref = tc priority; a lower pref is tried first):
//
//   representor of VF i, ingress (traffic the VF sends), all with `src_mac <mac i>`:
//     pref 1  dst_mac <mac j>              -> redirect to the representor of local member j
//     pref 2  dst_mac multicast bit (BUM)  -> mirror to every other local member and, through
//                                             the VXLAN device, to every peer of the VNI
//     pref 3  anything else                -> tunnel_key set (VNI, local -> peer) + redirect to
//                                             the VXLAN device; with several peers, one
//                                             tunnel_key/mirror pair per peer (no learning:
//                                             unknown unicast floods, as the bridge overlay does)
//     pref 4  anything (spoofed source)    -> drop, in hardware: nothing of a VF reaches the
//                                             host stack through its representor
//   VXLAN device, ingress (traffic decapsulated from the peers), per (member or VNI, peer):
//     pref 1  enc_key_id VNI, enc_src_ip peer, enc_dst_ip local, enc_dst_port 4789,
//             dst_mac <mac i>              -> tunnel_key unset + redirect to representor i
//     pref 2  same outer match, dst_mac multicast bit -> tunnel_key unset + mirror to every
//             local member of the VNI
//
// Why one shared external-mode VXLAN device (`vfwvxlan`, `external` = collect_metadata) and
// not one per VNI: with tunnel_key the VNI and the addresses travel with each packet, so one
// device serves every VNI, as OVS's vxlan_sys_4789 does for mlx5 offload. There can be only
// one: this kernel refuses a second external device on UDP 4789 ("A VXLAN device with the
// specified VNI already exists"), and a per-VNI device on 4789 beside it cannot come up
// ("Address already in use"), so the bridge and tc-flower overlays exclude each other per
// netns. mlx5 decapsulates only on ports registered by a VXLAN device that is up in the PF's
// netns (mlx5_vxlan_lookup_port in en/tc_tun_vxlan.c), and the decap rules hang off this
// device's ingress, offloaded through the indirect block callbacks. Being host-wide, the device
// is host state made by `vfwire host setup` (like the IPsec SAs), not refcounted by VNI: a
// `vni`-owned device would be deleted with the first VNI that empties while others still use it.
//
// BUM (broadcast, unknown unicast, multicast) without a control plane: head-end replication,
// one rule holding every destination. The last destination is `mirred egress redirect`, the
// others `mirred egress mirror` (mirror continues with the next action, redirect consumes the
// packet), local members first, then one `tunnel_key set ... mirred ... dev vfwvxlan` pair per
// peer. mlx5 offloads exactly this: each mirred after a tunnel_key set becomes an encap
// destination of its own (parse_mirred_encap, en/tc/act/mirred.c; a tunnel_key set applies to
// the next mirred only, which is why locals come first and carry no tunnel metadata), it
// refuses the same non-encap device twice in one rule ("can't duplicate output to same
// device"), and it forwards to at most MLX5_MAX_FLOW_FWD_VPORTS = 32 destinations per rule
// (raised from 2 in Linux 5.16, commit "net/mlx5: E-Switch, Increase supported number of
// forward destinations to 32"). Per-destination rules chained with `continue` (mlx5 has no
// parser for it, en/tc/act/act.c) or `goto chain` ("Mirroring goto chain rules isn't
// supported", en_tc.c) are not offloaded, and mirred `blockid`
// (Linux 6.10) replicates in software only. The replication lists depend on who is on the VNI,
// so those rules are rewritten (`tc filter replace`, in place, same pref and handle) whenever a
// member joins or leaves, as OVS revalidates its datapath flows; see planTcJoin/planTcLeave.
//
// Handles: flower identifies a rule by (device, pref, handle), so every rule gets a handle
// derived from stable facts and its undo `tc filter del dev D ingress pref P handle H flower`
// deletes exactly that rule:
//   representor pref 1: the destination VF's PCI bus/device/function as 16 bits (0000:03:00.2
//     -> 0x302; unique per VF on one PCI domain, and unchanged across re-leases);
//   representor prefs 2-4: 1 (one rule each per representor);
//   VXLAN pref 1: VF bits << 8 | peer index (0x30201: VF 03:00.2, the VNI's second peer);
//   VXLAN pref 2: VNI * 256 + peer index (VNI 100, first peer -> 0x6400).
// Peer indexes are positions in the VNI's peer list, which the ledger keeps for the VNI's life.
// Prefs stay small: mlx5 refuses a priority above its chains' range, 16 ("Requested priority is
// out of supported range", mlx5e_tc_add_fdb_flow in en_tc.c; TC_MAX_PRIO in the chains code),
// and firmware without eswitch priorities takes prio 1 only ("E-switch priorities unsupported,
// upgrade FW": the lab notes' firmware update comes first). Every rule within one pref uses the
// same keys and masks, so hardware that wants one mask per priority (OVS probes for it,
// multi_mask_per_prio) is served too.
//
// Outer UDP checksum: `nocsum`. mlx5 builds the encapsulation header with a zero UDP checksum
// (mlx5e_gen_ip_tunnel_header_vxlan) and RFC 7348 says VXLAN over IPv4 SHOULD send zero; with
// `nocsum` a rule evaluated in software would send the same bytes. TTL is left to the route.

import { ValidationError } from '../errors.js';
import { VNI_MAX, VNI_MIN } from '../domain/interface-spec.js';
import { isUnicastMac, normalizeMac } from '../domain/mac.js';
import { ip, tc } from '../exec/tools.js';
import { PCI_ADDRESS_RE } from '../identifiers.js';
import { parseJsonOutput } from '../json-output.js';
import type { Command, Step, StepOwner } from '../exec/step.js';
import { VXLAN_PORT } from './names.js';

/** The one external-mode VXLAN device of a tc-flower host; gc's `vfw(br|vx)<digits>` never matches it. */
export const TC_VXLAN_DEVICE = 'vfwvxlan';

/** mlx5's forward destinations per rule (MLX5_MAX_FLOW_FWD_VPORTS, Linux >= 5.16). */
export const MLX5_MAX_FWD_DESTS = 32;

const REP_PREF = { local: 1, bum: 2, flood: 3, drop: 4 } as const;
const VXLAN_PREF = { unicast: 1, bum: 2 } as const;

const MULTICAST = '01:00:00:00:00:00/01:00:00:00:00:00';
const MAX_PEERS = 256;

/**
 * Owner of steps whose undo must never be recorded in the ledger: host state (`host setup`
 * makes and keeps it) and the VNI-wide rules rewritten at every membership change, whose undo
 * is right only for rolling back the plan that made them. The ledger keeps no undo of the host.
 */
const TC_UNRECORDED_OWNER: StepOwner = { kind: 'host' };

export interface TcFlowerHost {
  /** Where the representors and the VXLAN device live (undefined: this netns). */
  netns?: string;
  /** The local VTEP: the underlay address (on the PF, or on the bond with failover). */
  underlayAddress: string;
  vxlanDevice?: string;
  /** The uplink has IPsec TX tables (vfwire's IPsec is on): encap rules may have one destination only. */
  ipsecTx?: boolean;
  /** Where the rules run (OVS's tc-policy): absent or skip_sw the NIC only, skip_hw the kernel only, none either. */
  policy?: 'skip_sw' | 'skip_hw' | 'none';
}

/** One leased VF on the VNI. */
export interface TcMember {
  leaseKey: string;
  rep: string;
  mac: string;
  /** The VF's PCI address (0000:03:00.2): the source of its rule handles. */
  pci: string;
}

/** What the rules of one VNI are computed from: its peers (fixed for the VNI's life) and members. */
export interface TcVniState {
  vni: number;
  peers: string[];
  members: TcMember[];
}

/** One flower rule as data. `spec` is everything after `flower`: match, then actions. */
export interface TcRule {
  dev: string;
  pref: number;
  handle: number;
  spec: string[];
  /** `lease`: depends on that lease, its VNI and peers only, so its undo stays right until the lease goes. `vni`: rewritten when members change. */
  scope: 'lease' | 'vni';
  leaseKey?: string;
  about: string;
}

// ---------------------------------------------------------------------------------------------
// Host state: the shared VXLAN device and its ingress qdisc.

/** The shared device as `vfwire host setup` reads it; undefined fields were not read. */
export interface TcHostState {
  /** From `ip -j -d link show vfwvxlan` (parseTcHostLink); null: no such device. */
  vxlan?: { external: boolean; port: number; mtu: number; up: boolean } | null;
  /** From `tc -j qdisc show dev vfwvxlan` (hasIngressQdisc). */
  ingressQdisc?: boolean;
}

/** `vfwire host setup` with `overlay: tc-flower`, unconditionally: the external VXLAN device, up, with an ingress qdisc. */
export function renderTcHost(host: TcFlowerHost, mtu: number): Step[] {
  return planTcHost(host, mtu, {});
}

/** Only what differs from `current`, each undo restoring what was read; a second run plans nothing. */
export function planTcHost(host: TcFlowerHost, mtu: number, current: TcHostState): Step[] {
  const ns = host.netns;
  const vx = vxlanDev(host);
  const owner = TC_UNRECORDED_OWNER;
  const cur = current.vxlan;
  const steps: Step[] = [];
  if (!cur) {
    steps.push({
      kind: 'tcf-vxlan-create',
      device: vx,
      owner,
      do: {
        argv: ip(ns, 'link', 'add', vx, 'mtu', String(mtu), 'type', 'vxlan', 'dstport', String(VXLAN_PORT), 'external'),
      },
      undo: { argv: ip(ns, 'link', 'del', vx) },
    });
  } else if (!cur.external || cur.port !== VXLAN_PORT) {
    throw new ValidationError(
      `host setup: ${vx} exists but is not an external VXLAN device on UDP ${VXLAN_PORT} (external ${cur.external}, port ${cur.port}); remove it (ip link del ${vx}) and run host setup again`,
    );
  } else if (cur.mtu !== mtu) {
    steps.push({
      kind: 'tcf-vxlan-mtu',
      device: vx,
      owner,
      do: { argv: ip(ns, 'link', 'set', 'dev', vx, 'mtu', String(mtu)) },
      undo: { argv: ip(ns, 'link', 'set', 'dev', vx, 'mtu', String(cur.mtu)) },
    });
  }
  if (!cur?.up)
    steps.push({
      kind: 'tcf-vxlan-up',
      device: vx,
      owner,
      do: { argv: ip(ns, 'link', 'set', 'dev', vx, 'up') },
      undo: { argv: ip(ns, 'link', 'set', 'dev', vx, 'down') },
    });
  // A new device has no qdisc, whatever was read about the old one.
  if (!cur || !current.ingressQdisc) {
    steps.push({
      kind: 'tcf-qdisc',
      device: vx,
      owner,
      do: { argv: tc(ns, 'qdisc', 'add', 'dev', vx, 'ingress') },
      undo: { argv: tc(ns, 'qdisc', 'del', 'dev', vx, 'ingress') },
    });
  }
  return steps;
}

/** `ip -j -d link show vfwvxlan` (iproute2 ip/iplink_vxlan.c: info_data.external, info_data.port). */
export function parseTcHostLink(json: string, dev = TC_VXLAN_DEVICE): NonNullable<TcHostState['vxlan']> {
  const link = parseJsonArray(json, `ip link show ${dev}`)[0] as
    | {
        mtu?: number;
        flags?: string[];
        linkinfo?: { info_kind?: string; info_data?: { external?: boolean; port?: number } };
      }
    | undefined;
  if (!link) throw new ValidationError(`ip link show ${dev}: no such link in the output`);
  if (link.linkinfo?.info_kind !== 'vxlan')
    throw new ValidationError(
      `ip link show ${dev}: not a VXLAN device (${link.linkinfo?.info_kind ?? 'no linkinfo; was -d given?'})`,
    );
  const d = link.linkinfo.info_data ?? {};
  return {
    external: d.external === true,
    port: d.port ?? 0,
    mtu: link.mtu ?? 0,
    up: link.flags?.includes('UP') ?? false,
  };
}

/** `tc -j qdisc show dev D`: is there an ingress (or clsact) qdisc? */
export function hasIngressQdisc(json: string, dev = 'device'): boolean {
  return parseJsonArray(json, `tc qdisc show dev ${dev}`).some(
    (q) => (q as { kind?: string }).kind === 'ingress' || (q as { kind?: string }).kind === 'clsact',
  );
}

/** A cheap check for a VM's start: the shared device exists (fail closed with a clear step name). */
export function renderTcHostCheck(host: TcFlowerHost, leaseKey: string): Step {
  const vx = vxlanDev(host);
  return {
    kind: 'tcf-vxlan-check',
    device: vx,
    owner: { kind: 'lease', key: leaseKey },
    do: { argv: ip(host.netns, 'link', 'show', 'dev', vx) },
  };
}

// ---------------------------------------------------------------------------------------------
// The rules of a VNI.

/** Every rule a VNI with these members and peers needs, in a stable order. */
export function tcVniRules(host: TcFlowerHost, state: TcVniState): TcRule[] {
  validateState(state);
  const vx = vxlanDev(host);
  const { vni, peers, members } = state;
  const rules: TcRule[] = [];
  const encap = (peer: string) => [
    'action',
    'tunnel_key',
    'set',
    'id',
    String(vni),
    'src_ip',
    host.underlayAddress,
    'dst_ip',
    peer,
    'dst_port',
    String(VXLAN_PORT),
    'nocsum',
  ];

  for (const m of members) {
    const others = members.filter((o) => o !== m);
    const from = ['src_mac', m.mac];
    for (const o of others) {
      rules.push({
        dev: m.rep,
        pref: REP_PREF.local,
        handle: vfBits(o.pci),
        spec: [...from, 'dst_mac', o.mac, ...replicate([{ rep: o.rep }])],
        scope: 'vni',
        about: `${m.rep} -> ${o.rep} (${o.mac})`,
      });
    }
    // With no other local member BUM goes where unknown unicast goes: the pref 3 rule covers it.
    if (others.length > 0) {
      const dests = [...others.map((o) => ({ rep: o.rep })), ...peers.map((p) => ({ peer: p }))];
      checkFanout(host, vni, m.rep, others.length, peers.length);
      rules.push({
        dev: m.rep,
        pref: REP_PREF.bum,
        handle: 1,
        spec: [...from, 'dst_mac', MULTICAST, ...replicate(dests, encap, vx)],
        scope: 'vni',
        about: `${m.rep} BUM -> ${dests.length} destination(s)`,
      });
    }
    if (peers.length > 0) {
      checkFanout(host, vni, m.rep, 0, peers.length);
      rules.push({
        dev: m.rep,
        pref: REP_PREF.flood,
        handle: 1,
        spec: [
          ...from,
          ...replicate(
            peers.map((p) => ({ peer: p })),
            encap,
            vx,
          ),
        ],
        scope: 'lease',
        leaseKey: m.leaseKey,
        about: `${m.rep} -> VNI ${vni} peers`,
      });
    }
    rules.push({
      dev: m.rep,
      pref: REP_PREF.drop,
      handle: 1,
      spec: ['action', 'drop'],
      scope: 'lease',
      leaseKey: m.leaseKey,
      about: `${m.rep} drop the rest`,
    });
  }

  peers.forEach((peer, p) => {
    const outer = [
      'enc_key_id',
      String(vni),
      'enc_src_ip',
      peer,
      'enc_dst_ip',
      host.underlayAddress,
      'enc_dst_port',
      String(VXLAN_PORT),
    ];
    for (const m of members) {
      rules.push({
        dev: vx,
        pref: VXLAN_PREF.unicast,
        handle: vfBits(m.pci) * 256 + p,
        spec: [...outer, 'dst_mac', m.mac, 'action', 'tunnel_key', 'unset', ...replicate([{ rep: m.rep }])],
        scope: 'lease',
        leaseKey: m.leaseKey,
        about: `VNI ${vni} from ${peer} -> ${m.rep}`,
      });
    }
    if (members.length > 0) {
      checkFanout(host, vni, vx, members.length, 0);
      rules.push({
        dev: vx,
        pref: VXLAN_PREF.bum,
        handle: vni * 256 + p,
        spec: [
          ...outer,
          'dst_mac',
          MULTICAST,
          'action',
          'tunnel_key',
          'unset',
          ...replicate(members.map((m) => ({ rep: m.rep }))),
        ],
        scope: 'vni',
        about: `VNI ${vni} BUM from ${peer} -> ${members.length} member(s)`,
      });
    }
  });
  checkUniqueHandles(rules);
  return rules;
}

type Dest = { rep: string } | { peer: string };

// Head-end replication: locals first (no tunnel metadata yet), then one tunnel_key set per peer,
// each followed by its mirred; every destination but the last is a mirror, the last a redirect.
function replicate(dests: Dest[], encap?: (peer: string) => string[], vx?: string): string[] {
  return dests.flatMap((d, i) => {
    const how = i === dests.length - 1 ? 'redirect' : 'mirror';
    if ('rep' in d) return ['action', 'mirred', 'egress', how, 'dev', d.rep];
    return [...encap!(d.peer), 'action', 'mirred', 'egress', how, 'dev', vx!];
  });
}

function addRule(host: TcFlowerHost, r: TcRule, verb: 'add' | 'replace'): Command {
  const flag = host.policy === 'none' ? [] : [host.policy ?? 'skip_sw'];
  return {
    argv: tc(
      host.netns,
      'filter',
      verb,
      'dev',
      r.dev,
      'ingress',
      'pref',
      String(r.pref),
      'handle',
      hex(r.handle),
      'protocol',
      'all',
      'flower',
      ...flag,
      ...r.spec,
    ),
  };
}

function delRule(host: TcFlowerHost, r: Pick<TcRule, 'dev' | 'pref' | 'handle'>): Command {
  return {
    argv: tc(
      host.netns,
      'filter',
      'del',
      'dev',
      r.dev,
      'ingress',
      'pref',
      String(r.pref),
      'handle',
      hex(r.handle),
      'flower',
    ),
  };
}

/** Every rule of these VNIs removed (tolerant callers: some may be gone already); qdiscs stay. */
export function renderTcRulesDown(host: TcFlowerHost, rules: TcRule[]): Step[] {
  return rules.map((r) => ({
    kind: 'tcf-ipsec-down',
    device: ruleId(r),
    owner: TC_UNRECORDED_OWNER,
    do: delRule(host, r),
  }));
}

/** Every rule put (back) in place: `replace` creates a missing rule and rewrites a present one. */
export function renderTcRulesUp(host: TcFlowerHost, rules: TcRule[]): Step[] {
  return rules.map((r) => ({
    kind: 'tcf-ipsec-up',
    device: ruleId(r),
    owner: TC_UNRECORDED_OWNER,
    do: addRule(host, r, 'replace'),
  }));
}

// ---------------------------------------------------------------------------------------------
// Joins and leaves.

/**
 * A VF (or several, of one VM) joins a VNI. Returns, in order:
 * - per joining member, owned by its lease (record their undo; it stays exact until the lease
 *   goes): the representor's ingress qdisc, its flood and drop rules, its unicast decap rules;
 * - the VNI-wide rewrite (`tcf-sync-*`, owner TC_UNRECORDED_OWNER): other members' rules towards
 *   the newcomer, the BUM lists. Their undo restores the state before this join, for rolling
 *   back this plan only: run them, never record them (planTcLeave recomputes at release).
 */
export function planTcJoin(host: TcFlowerHost, before: TcVniState, joining: TcMember[]): Step[] {
  joining.forEach((m, i) => {
    const twice = [...before.members, ...joining.slice(0, i)].some((b) => b.leaseKey === m.leaseKey || b.rep === m.rep);
    if (twice) throw new ValidationError(`VNI ${before.vni}: ${m.rep} (${m.leaseKey}) is already a member`);
  });
  const after: TcVniState = { ...before, members: [...before.members, ...joining] };
  const rules = tcVniRules(host, after);
  const steps: Step[] = [];
  for (const m of joining) {
    const owner = { kind: 'lease', key: m.leaseKey } as const;
    steps.push({
      kind: 'tcf-rep-qdisc',
      device: m.rep,
      owner,
      do: { argv: tc(host.netns, 'qdisc', 'add', 'dev', m.rep, 'ingress') },
      undo: { argv: tc(host.netns, 'qdisc', 'del', 'dev', m.rep, 'ingress') },
    });
    for (const r of rules.filter((x) => x.scope === 'lease' && x.leaseKey === m.leaseKey)) {
      steps.push({ kind: 'tcf-rule', device: ruleId(r), owner, do: addRule(host, r, 'add'), undo: delRule(host, r) });
    }
  }
  steps.push(...syncSteps(host, tcVniRules(host, before), rules));
  return steps;
}

/**
 * Leases leave a VNI. Returns the VNI-wide rewrite without them: what the release runs *before*
 * the leaving leases' recorded undo (which then removes their own rules and qdiscs). Computed
 * from the ledger's members at release time, never from anything recorded at join time.
 */
export function planTcLeave(host: TcFlowerHost, before: TcVniState, leaving: string[]): Step[] {
  const going = new Set(leaving);
  const after: TcVniState = { ...before, members: before.members.filter((m) => !going.has(m.leaseKey)) };
  // Rules on a leaving representor go with its qdisc (the lease's recorded undo); the rest is rewritten.
  const goingReps = new Set(before.members.filter((m) => going.has(m.leaseKey)).map((m) => m.rep));
  const keep = (r: TcRule) => !goingReps.has(r.dev);
  return syncSteps(host, tcVniRules(host, before).filter(keep), tcVniRules(host, after));
}

/** True for the VNI-wide rewrite steps whose undo must not be recorded (see planTcJoin). */
export function isTcSyncStep(step: Step): boolean {
  return step.kind.startsWith('tcf-sync-');
}

// Old and new VNI-wide rules -> del (undo: add the old), replace (undo: replace back with the
// old), add (undo: del); in that order, each in rule order. Lease-scoped rules are the leases'.
function syncSteps(host: TcFlowerHost, old: TcRule[], now: TcRule[]): Step[] {
  const oldV = new Map(old.filter((r) => r.scope === 'vni').map((r) => [ruleKey(r), r]));
  const nowV = new Map(now.filter((r) => r.scope === 'vni').map((r) => [ruleKey(r), r]));
  const owner = TC_UNRECORDED_OWNER;
  const dels: Step[] = [];
  const replaces: Step[] = [];
  const adds: Step[] = [];
  for (const [k, r] of oldV) {
    if (!nowV.has(k))
      dels.push({
        kind: 'tcf-sync-del',
        device: ruleId(r),
        owner,
        do: delRule(host, r),
        undo: addRule(host, r, 'add'),
      });
  }
  for (const [k, r] of nowV) {
    const was = oldV.get(k);
    if (!was)
      adds.push({
        kind: 'tcf-sync-add',
        device: ruleId(r),
        owner,
        do: addRule(host, r, 'add'),
        undo: delRule(host, r),
      });
    else if (was.spec.join(' ') !== r.spec.join(' '))
      replaces.push({
        kind: 'tcf-sync-replace',
        device: ruleId(r),
        owner,
        do: addRule(host, r, 'replace'),
        undo: addRule(host, was, 'replace'),
      });
  }
  return [...dels, ...replaces, ...adds];
}

// ---------------------------------------------------------------------------------------------
// doctor: are the rules in hardware?

/** One filter as `tc -j -s filter show dev D ingress` reports it. */
export interface TcFilterStatus {
  pref: number;
  handle: number;
  kind: string;
  protocol?: string;
  chain?: number;
  skipSw: boolean;
  skipHw: boolean;
  inHw: boolean;
  notInHw: boolean;
  inHwCount?: number;
}

/**
 * Parses `tc -j [-s] filter show dev D ingress` (iproute2 >= 5.x). Per tc/tc_filter.c
 * print_filter, each classifier instance (pref) first appears as a head entry without
 * `options`; every filter then carries `options` with `handle`, `keys`, the flags `skip_sw`,
 * `skip_hw`, `in_hw` (+ `in_hw_count`) or `not_in_hw` (tc/f_flower.c flower_print_opt), and
 * `actions`. Head entries and non-flower filters without a handle are skipped.
 */
export function parseTcFilterShow(json: string, dev = 'device'): TcFilterStatus[] {
  const out: TcFilterStatus[] = [];
  for (const e of parseJsonArray(json, `tc filter show dev ${dev}`) as Array<Record<string, unknown>>) {
    const o = e.options as Record<string, unknown> | undefined;
    if (!o || typeof o.handle !== 'number' || typeof e.pref !== 'number') continue;
    out.push({
      pref: e.pref,
      handle: o.handle,
      kind: String(e.kind ?? ''),
      protocol: typeof e.protocol === 'string' ? e.protocol : undefined,
      chain: typeof e.chain === 'number' ? e.chain : undefined,
      skipSw: o.skip_sw === true,
      skipHw: o.skip_hw === true,
      inHw: o.in_hw === true,
      notInHw: o.not_in_hw === true,
      inHwCount: typeof o.in_hw_count === 'number' ? o.in_hw_count : undefined,
    });
  }
  return out;
}

export type TcOffloadState = 'in_hw' | 'not_in_hw' | 'missing';

export interface TcRuleCheck {
  dev: string;
  pref: number;
  handle: number;
  about: string;
  state: TcOffloadState;
  /** One line for doctor: what is wrong and the likely fix. */
  detail: string;
}

/**
 * Matches the rules vfwire expects (tcVniRules of every VNI in the ledger) against what tc
 * shows per device. `in_hw` needs the flag and, where reported, a non-zero in_hw_count; a
 * flower filter reported without either flag (kernels before 4.15) counts as not in hardware.
 */
export function checkTcOffload(
  expected: Pick<TcRule, 'dev' | 'pref' | 'handle' | 'about'>[],
  shown: Map<string, TcFilterStatus[]>,
): TcRuleCheck[] {
  return expected.map((r) => {
    const f = shown.get(r.dev)?.find((x) => x.pref === r.pref && x.handle === r.handle && x.kind === 'flower');
    const base = { dev: r.dev, pref: r.pref, handle: r.handle, about: r.about };
    if (!f)
      return {
        ...base,
        state: 'missing' as const,
        detail: `${ruleId(r)}: missing (${r.about}); vfwire gc, or restart the VM to re-plan its rules`,
      };
    if (f.inHw && f.inHwCount !== 0)
      return {
        ...base,
        state: 'in_hw' as const,
        detail: `${ruleId(r)}: in_hw${f.inHwCount === undefined ? '' : ` (count ${f.inHwCount})`}`,
      };
    return {
      ...base,
      state: 'not_in_hw' as const,
      detail: `${ruleId(r)}: not_in_hw (${r.about}); check switchdev mode, the VXLAN port offload (ethtool --show-tunnels) and dmesg for mlx5 messages`,
    };
  });
}

// ---------------------------------------------------------------------------------------------

function parseJsonArray(json: string, what: string): unknown[] {
  const doc = parseJsonOutput(json, what);
  if (!Array.isArray(doc)) throw new ValidationError(`${what}: expected a JSON array`);
  return doc;
}

function vxlanDev(host: TcFlowerHost): string {
  return host.vxlanDevice ?? TC_VXLAN_DEVICE;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** A rule's identity on its device: tc finds a rule by device, pref and handle. */
function ruleKey(r: Pick<TcRule, 'dev' | 'pref' | 'handle'>): string {
  return `${r.dev} ${r.pref} ${r.handle}`;
}

function ruleId(r: Pick<TcRule, 'dev' | 'pref' | 'handle'>): string {
  return `${r.dev} pref ${r.pref} handle ${hex(r.handle)}`;
}

/** 0000:03:00.2 -> 0x0302: bus << 8 | device << 3 | function, the VF's identity on one PCI domain. */
export function vfBits(pci: string): number {
  const m = PCI_ADDRESS_RE.exec(pci);
  if (!m) throw new ValidationError(`pci: ${JSON.stringify(pci)} is not a PCI address like 0000:03:00.2`);
  const dev = parseInt(m[3]!, 16);
  if (dev > 31) throw new ValidationError(`pci: ${pci}: device number above 0x1f`);
  return (parseInt(m[2]!, 16) << 8) | (dev << 3) | parseInt(m[4]!, 10);
}

function validateState(s: TcVniState): void {
  if (!Number.isInteger(s.vni) || s.vni < VNI_MIN || s.vni > VNI_MAX)
    throw new ValidationError(`vni: ${s.vni} is not a VXLAN VNI (${VNI_MIN}..${VNI_MAX})`);
  if (s.peers.length > MAX_PEERS)
    throw new ValidationError(`VNI ${s.vni}: ${s.peers.length} peers, at most ${MAX_PEERS} fit the rule handles`);
  if (new Set(s.peers).size !== s.peers.length) throw new ValidationError(`VNI ${s.vni}: a peer is listed twice`);
  for (const m of s.members) {
    if (!normalizeMac(m.mac) || !isUnicastMac(m.mac))
      throw new ValidationError(`VNI ${s.vni}: ${m.rep}: mac ${JSON.stringify(m.mac)} is not a unicast MAC`);
  }
}

function checkFanout(host: TcFlowerHost, vni: number, dev: string, locals: number, peers: number): void {
  const n = locals + peers;
  if (n > MLX5_MAX_FWD_DESTS) {
    throw new ValidationError(
      `VNI ${vni}: ${dev} would replicate to ${n} destinations; mlx5 offloads at most ${MLX5_MAX_FWD_DESTS} per rule (fewer peers or members on this VNI)`,
    );
  }
  // With IPsec TX tables on the uplink, a rule that encapsulates to it must have no other
  // destination (drivers/net/ethernet/mellanox/mlx5/core/eswitch_offloads.c esw_flow_dests_fwd_ipsec_check).
  if (host.ipsecTx && peers > 0 && n > 1) {
    throw new ValidationError(
      `VNI ${vni}: broadcast from a member would go to ${n} destinations, one of them the encrypted uplink; mlx5 refuses such a rule under IPsec (esw_flow_dests_fwd_ipsec_check): on overlay tc-flower with IPsec keep one member per VNI on this host and one peer, or use overlay: bridge`,
    );
  }
}

function checkUniqueHandles(rules: TcRule[]): void {
  const seen = new Map<string, TcRule>();
  for (const r of rules) {
    const k = ruleKey(r);
    const other = seen.get(k);
    if (other)
      throw new ValidationError(
        `tc rule handle collision on ${ruleId(r)}: ${other.about} / ${r.about} (VFs on different PCI domains with the same bus:device.function?)`,
      );
    seen.set(k, r);
  }
}
