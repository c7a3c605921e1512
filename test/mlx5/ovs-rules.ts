// OpenFlow rules in the ovs-ofctl text vfwire writes (src/overlay/ovs/flows.ts), parsed as
// ovs-ofctl would read them (ovs-fields(7), ovs-actions(7)), and the pipeline they make: a packet
// through table 0 and what it resubmits to, as ofproto-dpif-xlate does, with the fields each
// consulted rule looked at (what the datapath flow's match then holds). Any other field or action
// is UnmodeledCommand.

import { UnmodeledCommand } from './refusal.js';

export type OvsAction =
  | { kind: 'load'; reg: 0 | 1; value: number }
  | { kind: 'resubmit'; table: number }
  | { kind: 'output'; port: string }
  | { kind: 'set-tun-id'; value: number }
  | { kind: 'set-tun-dst'; ip: string }
  | { kind: 'drop' };

export interface OvsRule {
  cookie: number;
  table: number;
  priority: number;
  /** Field -> value; `dl_type` is `arp` for the `arp` shorthand. */
  match: Record<string, string>;
  actions: OvsAction[];
}

const FIELDS = new Set(['in_port', 'dl_src', 'dl_dst', 'arp_sha', 'tun_id', 'tun_src', 'reg0', 'reg1']);

/** Splits at commas outside parentheses (`resubmit(,1)`). */
function topLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

function action(a: string): OvsAction {
  let m: RegExpExecArray | null;
  if ((m = /^load:(\d+)->NXM_NX_REG([01])\[\]$/.exec(a)))
    return { kind: 'load', reg: Number(m[2]) as 0 | 1, value: Number(m[1]) };
  if ((m = /^resubmit\(,(\d+)\)$/.exec(a))) return { kind: 'resubmit', table: Number(m[1]) };
  if ((m = /^output:([\w.-]+)$/.exec(a))) return { kind: 'output', port: m[1]! };
  if ((m = /^set_field:(\d+)->tun_id$/.exec(a))) return { kind: 'set-tun-id', value: Number(m[1]) };
  if ((m = /^set_field:([\d.]+)->tun_dst$/.exec(a))) return { kind: 'set-tun-dst', ip: m[1]! };
  if (a === 'drop') return { kind: 'drop' };
  throw new UnmodeledCommand(`the OpenFlow action ${a}`);
}

export function parseRule(text: string): OvsRule {
  const at = text.indexOf('actions=');
  if (at < 0) throw new UnmodeledCommand(`an OpenFlow rule without actions: ${text}`);
  const rule: OvsRule = { cookie: 0, table: 0, priority: 32768, match: {}, actions: [] };
  for (const tok of text.slice(0, at).split(',').filter(Boolean)) {
    const [k, v] = tok.split('=', 2) as [string, string | undefined];
    if (k === 'cookie') rule.cookie = Number(v);
    else if (k === 'table') rule.table = Number(v);
    else if (k === 'priority') rule.priority = Number(v);
    else if (k === 'arp' && v === undefined) rule.match['dl_type'] = 'arp';
    else if (FIELDS.has(k) && v !== undefined) rule.match[k] = v;
    else throw new UnmodeledCommand(`the OpenFlow match ${tok}`);
  }
  // ovs-fields(7): arp_sha needs dl_type arp as its prerequisite
  if (rule.match['arp_sha'] && rule.match['dl_type'] !== 'arp')
    throw new UnmodeledCommand('arp_sha without its prerequisite arp');
  rule.actions = topLevel(text.slice(at + 8)).map(action);
  return rule;
}

/** A frame as it reaches the bridge. */
export interface OvsPacket {
  /** The OVS port it comes in on (the tunnel port for VXLAN). */
  inPort: string;
  dlSrc: string;
  dlDst: string;
  /** An ARP frame, with its sender MAC; otherwise IPv4. */
  arpSha?: string;
  /** For VXLAN: the decapsulated metadata. */
  tunnel?: { id: number; src: string; dst: string };
}

export interface OvsOutput {
  port: string;
  /** Set for an output to the tunnel port: the tunnel metadata at that point. */
  tunnel?: { id: number; dst: string };
}

export interface PipelineResult {
  outputs: OvsOutput[];
  /** The packet fields the consulted rules looked at: the datapath flow matches exactly these. */
  fields: Set<string>;
}

function fieldValue(p: OvsPacket, regs: number[], field: string): string | undefined {
  switch (field) {
    case 'in_port':
      return p.inPort;
    case 'dl_src':
      return p.dlSrc;
    case 'dl_dst':
      return p.dlDst;
    case 'dl_type':
      return p.arpSha !== undefined ? 'arp' : 'ip';
    case 'arp_sha':
      return p.arpSha;
    case 'tun_id':
      return p.tunnel ? String(p.tunnel.id) : undefined;
    case 'tun_src':
      return p.tunnel?.src;
    case 'reg0':
      return String(regs[0]);
    case 'reg1':
      return String(regs[1]);
  }
  return undefined;
}

/**
 * The packet through the tables. A table miss drops (fail_mode secure, OpenFlow 1.3+: ovs-ofctl(8)
 * "table-miss"); an output to the ingress port is skipped (ovs-actions(7) "output"). Every rule of
 * a consulted table at or above the winner's priority was looked at: its fields are in the
 * datapath flow's match (lib/classifier.c un-wildcards what a lookup examined), but for the
 * stages staged lookup never reached. Where the model is unsure it keeps a field: that can only
 * make a flow harder to offload, never pass one mlx5 would refuse.
 */
export function runPipeline(rules: OvsRule[], p: OvsPacket, isTunnelPort: (port: string) => boolean): PipelineResult {
  const outputs: OvsOutput[] = [];
  const fields = new Set<string>(['in_port']);
  const regs = [0, 0];
  const tun: { id?: number; dst?: string } = {};
  const table = (t: number, depth: number): void => {
    // ofproto/ofproto-dpif-xlate.c MAX_RESUBMITS bounds recursion; vfwire's rules resubmit once
    if (depth > 4) throw new UnmodeledCommand('resubmits deeper than vfwire writes');
    const sorted = rules.filter((r) => r.table === t).sort((a, b) => b.priority - a.priority);
    const hit = sorted.find((r) => Object.entries(r.match).every(([f, v]) => fieldValue(p, regs, f) === v));
    for (const r of sorted) {
      if (hit && r.priority < hit.priority) break;
      // lib/classifier.c find_match_wc (staged lookup): a subtable's later stage is looked at
      // only if its earlier ones matched; arp_sha sits past dl_type, so a non-ARP frame that
      // fails dl_type leaves it wildcarded
      const arpStage = r.match['dl_type'] === 'arp' && p.arpSha === undefined;
      for (const f of Object.keys(r.match)) if (!(arpStage && f === 'arp_sha')) fields.add(f);
    }
    if (!hit) return;
    for (const a of hit.actions) {
      if (a.kind === 'load') regs[a.reg] = a.value;
      else if (a.kind === 'resubmit') table(a.table, depth + 1);
      else if (a.kind === 'set-tun-id') tun.id = a.value;
      else if (a.kind === 'set-tun-dst') tun.dst = a.ip;
      else if (a.kind === 'output') {
        if (a.port === p.inPort) continue;
        if (isTunnelPort(a.port)) {
          if (tun.id === undefined || tun.dst === undefined)
            throw new UnmodeledCommand(`an output to tunnel port ${a.port} without tun_id and tun_dst set`);
          outputs.push({ port: a.port, tunnel: { id: tun.id, dst: tun.dst } });
        } else outputs.push({ port: a.port });
      }
    }
  };
  table(0, 0);
  // Registers are metadata of the pipeline, not of the packet: never in the datapath flow.
  fields.delete('reg0');
  fields.delete('reg1');
  return { outputs, fields };
}
