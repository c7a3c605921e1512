// The OpenFlow rules of one VNI on vfwire's Open vSwitch bridge, as ovs-ofctl text: who is on
// it and which peers carry it determine them all, as for tc-flower (overlay/tc-flower/rules.ts).
// The bridge is fail_mode=secure with no other flows, so what no rule admits is dropped (a
// table miss drops from OpenFlow 1.3 on, ovs-ofctl(8) "table-miss"), NORMAL never runs, and
// nothing floods between VNIs.
//
//   table 0, admission, per member (representor port, lease MAC):
//     prio 110  its ARP with the lease MAC as sender    -> reg0 = VNI, reg1 = 1 (local), table 1
//     prio 105  any other ARP from it                   -> drop
//     prio 100  frames with the lease MAC as source     -> reg0 = VNI, reg1 = 1, table 1
//   (anything else from a representor misses: spoofed sources go nowhere)
//   table 0, per peer, on the one flow-based VXLAN port (model.ts OVS_TUNNEL_PORT):
//     prio 100  tun_id VNI, tun_src the peer           -> reg0 = VNI, reg1 = 2 (tunnel), table 1
//   (VXLAN of another VNI, or of this VNI from anyone else, misses)
//   table 1, forwarding:
//     prio 100  reg0 VNI, dl_dst a member's MAC         -> that member's port
//     prio 10   reg0 VNI, from a member (BUM, unknown)  -> every member, then tun_id VNI and
//                                                          tun_dst per peer out of the VXLAN port
//                                                          (head-end replication)
//     prio 10   reg0 VNI, from a tunnel                 -> every member (split horizon: never
//                                                          back out to a peer)
// Explicit rules, no learning: a member's MAC is its lease's, known before its first frame, and
// a remote MAC is sent to every peer of the VNI as the bridge overlay's all-zero FDB entries do.
// An output to the port a frame came in on is dropped by OpenFlow itself (ovs-actions(7),
// "output": "does not output to the ingress port"), so one flood list serves every member.
// Every rule carries cookie = VNI; the VNI's rules are replaced in one OpenFlow 1.4 bundle
// (`ovs-ofctl --bundle`: all of the file or none of it), its delete first. A VNI without
// members has no rules at all.

import type { Command } from '../../exec/step.js';
import { OVS_TUNNEL_PORT, ofctl } from './model.js';
import type { OvsVniHost } from '../../ledger/types.js';

export interface OvsMember {
  /** The representor's port name on the bridge. */
  port: string;
  mac: string;
}

export interface OvsVni {
  vni: number;
  members: OvsMember[];
  /** Underlay addresses of the peers that carry this VNI. */
  peers: string[];
}

const cookie = (vni: number) => `0x${vni.toString(16)}`;

/** The VNI's rules, for `ovs-ofctl add-flows` (one flow_mod per line, the delete first). */
export function vniFlows(v: OvsVni): string[] {
  const c = cookie(v.vni);
  const lines = [`delete cookie=${c}/-1`];
  if (v.members.length === 0) return lines;
  const into = (from: 1 | 2) => `load:${v.vni}->NXM_NX_REG0[],load:${from}->NXM_NX_REG1[],resubmit(,1)`;
  const t = OVS_TUNNEL_PORT;
  for (const m of v.members) {
    lines.push(`add cookie=${c},table=0,priority=110,in_port=${m.port},arp,arp_sha=${m.mac},actions=${into(1)}`);
    lines.push(`add cookie=${c},table=0,priority=105,in_port=${m.port},arp,actions=drop`);
    lines.push(`add cookie=${c},table=0,priority=100,in_port=${m.port},dl_src=${m.mac},actions=${into(1)}`);
  }
  for (const p of v.peers)
    lines.push(`add cookie=${c},table=0,priority=100,in_port=${t},tun_id=${v.vni},tun_src=${p},actions=${into(2)}`);
  for (const m of v.members)
    lines.push(`add cookie=${c},table=1,priority=100,reg0=${v.vni},dl_dst=${m.mac},actions=output:${m.port}`);
  const locals = v.members.map((m) => `output:${m.port}`);
  const remote = v.peers.length
    ? [`set_field:${v.vni}->tun_id`, ...v.peers.flatMap((p) => [`set_field:${p}->tun_dst`, `output:${t}`])]
    : [];
  lines.push(`add cookie=${c},table=1,priority=10,reg0=${v.vni},reg1=1,actions=${[...locals, ...remote].join(',')}`);
  if (v.peers.length)
    lines.push(`add cookie=${c},table=1,priority=10,reg0=${v.vni},reg1=2,actions=${locals.join(',')}`);
  return lines;
}

/** The command that replaces the VNI's rules on the host's bridge, atomically. */
export function vniFlowsCommand(host: OvsVniHost, v: OvsVni): Command {
  return {
    argv: ofctl(host, ['--bundle'], 'add-flows', '-'),
    stdin: vniFlows(v).join('\n') + '\n',
    inputShown: true,
  };
}
