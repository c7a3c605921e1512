// The flower rules of one VNI, as data: who is on it and which peers carry it determine them all.
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
//
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
//
// (mlx5e_gen_ip_tunnel_header_vxlan) and RFC 7348 says VXLAN over IPv4 SHOULD send zero; with
// `nocsum` a rule evaluated in software would send the same bytes. TTL is left to the route.

import { ValidationError } from '../../errors.js';
import { VNI_MAX, VNI_MIN } from '../../domain/interface-spec.js';
import { isUnicastMac, normalizeMac } from '../../domain/mac.js';
import { VXLAN_PORT } from '../names.js';
import {
  MLX5_MAX_FWD_DESTS,
  ruleId,
  ruleKey,
  vfBits,
  vxlanDev,
  type TcFlowerHost,
  type TcRule,
  type TcVniState,
} from './model.js';

const REP_PREF = { local: 1, bum: 2, flood: 3, drop: 4 } as const;
const VXLAN_PREF = { unicast: 1, bum: 2 } as const;

const MULTICAST = '01:00:00:00:00:00/01:00:00:00:00:00';
const MAX_PEERS = 256;

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
