// `ip xfrm state|policy ...` as iproute2 parses it and as the kernel's xfrm core and mlx5 validate
// it. Parsing follows ip/xfrm_state.c and ip/xfrm_policy.c for the forms vfwire uses (and the
// variants the rules need); anything else is refused as unmodeled. Validators are pure: they
// read the request and the versions and return the refusal, or null.

import { Mlx5Refusal, UnmodeledCommand, mlx5, netlinkError, toolError } from './refusal.js';
import { atLeast, type Version } from './versions.js';

export interface Selector {
  src?: string;
  dst?: string;
  /** Upper protocol as a number (IPPROTO_*), 0 = any. */
  proto: number;
  sport?: number;
  dport?: number;
}

export interface SaRequest {
  verb: 'add' | 'update';
  src: string;
  dst: string;
  family: 4 | 6;
  /** IPPROTO_* of the SA (50 = esp). */
  proto: number;
  spi: number;
  reqid: number;
  mode: string;
  aead?: { name: string; keyBits: number; icvBits: number };
  /** enc/auth/comp algorithms other than aead (mlx5 refuses them). */
  otherAlgs: string[];
  esn: boolean;
  replayWindow: number;
  sel: Selector;
  offload?: { dev: string; packet: boolean; inbound: boolean };
  /** XFRMA_SA_DIR as iproute2 sends it (iproute2 >= 6.11 only). */
  saDir?: 'in' | 'out';
  encap?: string;
  tfcpad: number;
}

export interface SaId {
  src: string;
  dst: string;
  proto: number;
  spi: number;
}

export interface PolicyRequest {
  verb: 'add' | 'update';
  sel: Selector;
  dir: 'in' | 'out' | 'fwd';
  priority: number;
  ptype: 'main' | 'sub';
  action: 'allow' | 'block';
  tmpls: { src?: string; dst?: string; proto: number; reqid: number; mode: string }[];
  offload?: { dev: string };
}

export interface PolicyId {
  sel: Selector;
  dir: 'in' | 'out' | 'fwd';
}

const IPPROTO: Record<string, number> = { esp: 50, ah: 51, comp: 108, tcp: 6, udp: 17, icmp: 1, sctp: 132, gre: 47 };
const NAME_OF: Record<number, string> = Object.fromEntries(Object.entries(IPPROTO).map(([k, v]) => [v, k]));

export function protoName(p: number): string {
  return NAME_OF[p] ?? String(p);
}

const IPV4 = /^(\d{1,3})(\.\d{1,3}){3}$/;
const IPV6 = /^[0-9a-fA-F:]+:[0-9a-fA-F:.]*$/;

function family(addr: string): 4 | 6 | undefined {
  const a = addr.split('/')[0]!;
  if (IPV4.test(a)) return 4;
  if (IPV6.test(a)) return 6;
  return undefined;
}

/** Strip a /32 or /128 host prefix so selectors compare as the kernel stores them. */
function hostAddr(a: string | undefined): string | undefined {
  if (a === undefined) return undefined;
  return a.replace(/\/(32|128)$/, '');
}

function num(tok: string | undefined, what: string): number {
  if (tok === undefined) throw new UnmodeledCommand(`${what} without a value`);
  const n = /^0x[0-9a-f]+$/i.test(tok) ? parseInt(tok, 16) : /^\d+$/.test(tok) ? Number(tok) : NaN;
  if (Number.isNaN(n)) throw new UnmodeledCommand(`${what} ${JSON.stringify(tok)}`);
  return n;
}

/** A cursor over argv, like iproute2's NEXT_ARG / PREV_ARG. */
class Args {
  private i = 0;
  constructor(private readonly a: string[]) {}
  peek(): string | undefined {
    return this.a[this.i];
  }
  next(what: string): string {
    const t = this.a[this.i++];
    if (t === undefined) throw new UnmodeledCommand(`${what}: missing argument`);
    return t;
  }
  done(): boolean {
    return this.i >= this.a.length;
  }
}

function parseSelector(args: Args, allowLeadingUnknown: boolean): Selector {
  // ip/ipxfrm.c xfrm_selector_parse: src/dst/dev, then the UPSPEC after "proto"; stops at the first other token
  const sel: Selector = { proto: 0 };
  for (;;) {
    const t = args.peek();
    if (t === 'src') {
      args.next('sel');
      sel.src = hostAddr(args.next('src'));
    } else if (t === 'dst') {
      args.next('sel');
      sel.dst = hostAddr(args.next('dst'));
    } else if (t === 'proto') {
      args.next('sel');
      const p = args.next('proto');
      const n = IPPROTO[p] ?? (/^\d+$/.test(p) ? Number(p) : undefined);
      if (n === undefined) throw new UnmodeledCommand(`selector proto ${p}`);
      sel.proto = n;
    } else if (t === 'sport' || t === 'dport') {
      args.next('sel');
      sel[t] = num(args.next(t), t);
    } else if (t === 'dev') {
      throw new UnmodeledCommand('a selector with dev');
    } else {
      if (!allowLeadingUnknown && sel.src === undefined && sel.dst === undefined && sel.proto === 0)
        throw new UnmodeledCommand(`selector token ${JSON.stringify(t)}`);
      return sel;
    }
  }
}

/** `xfrm state add|update ...` (argv after "xfrm state"), as iproute2 `iproute2` parses it. */
export function parseStateAdd(verb: 'add' | 'update', argv: string[], iproute2: Version): SaRequest {
  const args = new Args(argv);
  const req: Partial<SaRequest> & { otherAlgs: string[]; esn: boolean; replayWindow: number; tfcpad: number } = {
    verb,
    otherAlgs: [],
    esn: false,
    replayWindow: 0,
    tfcpad: 0,
    reqid: 0,
    mode: 'transport',
    sel: { proto: 0 },
  };
  let dir: 'in' | 'out' | undefined;
  let offload: { dev: string; packet: boolean } | undefined;
  let haveId = false;
  while (!args.done()) {
    const t = args.next('state');
    if (t === 'src' || t === 'dst' || t === 'proto' || t === 'spi') {
      // ip/xfrm_state.c xfrm_state_modify: the ID (xfrm_id_parse) is one run of src/dst/proto/spi
      if (haveId) throw toolError('iproute2.xfrm-state.unknown-arg', `Error: argument "${t}" is wrong: unknown`);
      haveId = true;
      let tok: string | undefined = t;
      while (tok === 'src' || tok === 'dst' || tok === 'proto' || tok === 'spi') {
        const v = args.next(tok);
        if (tok === 'src') req.src = v;
        else if (tok === 'dst') req.dst = v;
        else if (tok === 'proto') {
          const p = IPPROTO[v];
          if (p === undefined) throw new UnmodeledCommand(`xfrm proto ${v}`);
          req.proto = p;
        } else req.spi = num(v, 'spi');
        tok = args.peek();
        if (tok === 'src' || tok === 'dst' || tok === 'proto' || tok === 'spi') args.next('id');
      }
    } else if (t === 'mode') {
      req.mode = args.next('mode');
    } else if (t === 'reqid') {
      req.reqid = num(args.next('reqid'), 'reqid');
    } else if (t === 'replay-window') {
      req.replayWindow = num(args.next('replay-window'), 'replay-window');
    } else if (t === 'flag') {
      // xfrm_state_flag_parse: a run of flag names
      let f = args.next('flag');
      for (;;) {
        if (f === 'esn') req.esn = true;
        else if (!['noecn', 'decap-dscp', 'nopmtudisc', 'wildrecv', 'icmp', 'af-unspec', 'align4'].includes(f))
          throw new UnmodeledCommand(`state flag ${f}`);
        const n = args.peek();
        if (
          n === undefined ||
          !['esn', 'noecn', 'decap-dscp', 'nopmtudisc', 'wildrecv', 'icmp', 'af-unspec', 'align4'].includes(n)
        )
          break;
        f = args.next('flag');
      }
    } else if (t === 'sel') {
      req.sel = parseSelector(args, false);
    } else if (t === 'aead') {
      const name = args.next('aead name');
      const key = args.next('aead key');
      const icv = num(args.next('aead icv'), 'icv');
      if (!/^0x[0-9a-f]+$/i.test(key)) throw new UnmodeledCommand('an aead key not in 0x hex');
      req.aead = { name, keyBits: Math.ceil((key.length - 2) / 2) * 8, icvBits: icv };
    } else if (t === 'enc' || t === 'auth' || t === 'auth-trunc' || t === 'comp') {
      const name = args.next(t);
      if (t !== 'comp') args.next(`${t} key`);
      if (t === 'auth-trunc') args.next('trunc len');
      req.otherAlgs.push(`${t} ${name}`);
    } else if (t === 'offload') {
      // ip/xfrm_state.c: "offload" [crypto|packet] dev DEV dir in|out; iproute2 6.2 (a6e740ff) added "packet"
      let mode = args.next('offload');
      let packet = false;
      if (!atLeast(iproute2, '6.2')) {
        // before a6e740ff the token after "offload" must be "dev" or "dir": "packet" fails there
        if (mode !== 'dev')
          throw toolError(
            'iproute2.xfrm-state.offload-packet-needs-6.2',
            `Error: argument "${mode}" is wrong: value after "offload dir" is invalid`,
          );
      } else if (mode === 'crypto' || mode === 'packet') {
        packet = mode === 'packet';
        mode = args.next('offload');
      }
      if (mode !== 'dev')
        throw toolError(
          'iproute2.xfrm-state.offload-syntax',
          `Error: argument "${mode}" is wrong: Missing dev keyword`,
        );
      const dev = args.next('offload dev');
      const d = args.next('offload');
      if (d !== 'dir')
        throw toolError('iproute2.xfrm-state.offload-syntax', `Error: argument "${d}" is wrong: Missing DIR keyword`);
      const v = args.next('offload dir');
      if (v !== 'in' && v !== 'out')
        throw toolError('iproute2.xfrm-state.offload-syntax', `Error: argument "${v}" is wrong: DIR value is invalid`);
      dir = v;
      offload = { dev, packet };
    } else if (t === 'dir') {
      // ip/xfrm_state.c: the SA "dir" keyword came with iproute2 7f7726a7 (first in v6.11.0)
      if (!atLeast(iproute2, '6.11'))
        throw toolError('iproute2.xfrm-state.dir-needs-6.11', 'Error: argument "dir" is wrong: unknown');
      const v = args.next('dir');
      if (v !== 'in' && v !== 'out')
        throw toolError(
          'iproute2.xfrm-state.dir-value',
          `Error: argument "${v}" is wrong: DIR value is not "in" or "out"`,
        );
      dir = v;
    } else if (t === 'encap') {
      req.encap = args.next('encap type');
      args.next('encap sport');
      args.next('encap dport');
      args.next('encap oa');
    } else if (t === 'tfcpad') {
      req.tfcpad = num(args.next('tfcpad'), 'tfcpad');
    } else {
      throw new UnmodeledCommand(`the xfrm state keyword ${JSON.stringify(t)}`);
    }
  }
  if (!haveId || req.src === undefined || req.dst === undefined || req.proto === undefined || req.spi === undefined)
    throw new UnmodeledCommand('an xfrm state without src, dst, proto and spi');
  // ip/xfrm_state.c xfrm_state_modify: ESN needs a window; iproute2 >= 6.11 (7f7726a7) waives it for "dir out"
  if (req.esn && req.replayWindow === 0 && !(atLeast(iproute2, '6.11') && dir === 'out')) {
    throw toolError('iproute2.xfrm-state.esn-needs-replay-window', 'Error: esn flag set without replay-window.');
  }
  const fam = family(req.src);
  if (!fam || family(req.dst) !== fam) throw new UnmodeledCommand(`state addresses ${req.src} ${req.dst}`);
  return {
    ...(req as SaRequest),
    family: fam,
    // iproute2 < 6.11: the offload "dir" only sets XFRM_OFFLOAD_INBOUND; >= 6.11 it is also sent as XFRMA_SA_DIR
    ...(atLeast(iproute2, '6.11') && dir ? { saDir: dir } : {}),
    ...(offload ? { offload: { ...offload, inbound: dir === 'in' } } : {}),
  };
}

/** `xfrm state delete|get ID` */
export function parseStateId(argv: string[]): SaId {
  const args = new Args(argv);
  const id: Partial<SaId> = {};
  while (!args.done()) {
    const t = args.next('id');
    const v = args.next(t);
    if (t === 'src') id.src = v;
    else if (t === 'dst') id.dst = v;
    else if (t === 'proto') id.proto = IPPROTO[v];
    else if (t === 'spi') id.spi = num(v, 'spi');
    else throw new UnmodeledCommand(`xfrm state id token ${t}`);
  }
  if (id.src === undefined || id.dst === undefined || id.proto === undefined || id.spi === undefined)
    throw new UnmodeledCommand('an xfrm state id without src, dst, proto and spi');
  return id as SaId;
}

/** `xfrm policy add|update ...` (argv after "xfrm policy"). */
export function parsePolicyAdd(verb: 'add' | 'update', argv: string[], iproute2: Version): PolicyRequest {
  const args = new Args(argv);
  let sel: Selector | undefined;
  let dir: PolicyRequest['dir'] | undefined;
  let priority = 0;
  let ptype: PolicyRequest['ptype'] = 'main';
  let action: PolicyRequest['action'] = 'allow';
  const tmpls: PolicyRequest['tmpls'] = [];
  let offload: { dev: string } | undefined;
  while (!args.done()) {
    const t = args.peek()!;
    if (t === 'dir') {
      args.next('dir');
      const v = args.next('dir');
      if (v !== 'in' && v !== 'out' && v !== 'fwd')
        throw toolError('iproute2.xfrm-policy.dir-value', `Error: argument "${v}" is wrong: DIR value is invalid`);
      dir = v;
    } else if (t === 'priority') {
      args.next('priority');
      priority = num(args.next('priority'), 'priority');
    } else if (t === 'ptype') {
      args.next('ptype');
      const v = args.next('ptype');
      if (v !== 'main' && v !== 'sub') throw new UnmodeledCommand(`ptype ${v}`);
      ptype = v;
    } else if (t === 'action') {
      args.next('action');
      const v = args.next('action');
      if (v !== 'allow' && v !== 'block') throw new UnmodeledCommand(`action ${v}`);
      action = v;
    } else if (t === 'tmpl') {
      args.next('tmpl');
      // ip/xfrm_policy.c xfrm_tmpl_parse: ID, mode, reqid, level until another keyword
      const tm: PolicyRequest['tmpls'][number] = { proto: 0, reqid: 0, mode: 'transport' };
      for (;;) {
        const k = args.peek();
        if (k === 'src' || k === 'dst') {
          args.next('tmpl');
          tm[k] = args.next(k);
        } else if (k === 'proto') {
          args.next('tmpl');
          const p = IPPROTO[args.next('proto')];
          if (p === undefined) throw new UnmodeledCommand('tmpl proto');
          tm.proto = p;
        } else if (k === 'reqid') {
          args.next('tmpl');
          tm.reqid = num(args.next('reqid'), 'reqid');
        } else if (k === 'mode') {
          args.next('tmpl');
          tm.mode = args.next('mode');
        } else if (k === 'spi' || k === 'level') {
          args.next('tmpl');
          args.next(k);
        } else break;
      }
      tmpls.push(tm);
    } else if (t === 'offload') {
      // ip/xfrm_policy.c: "offload packet dev DEV" came with iproute2 3422c62d (v6.2.0); before it the
      // token falls to the selector branch, which is already taken: duparg("unknown", "offload")
      if (!atLeast(iproute2, '6.2'))
        throw toolError(
          'iproute2.xfrm-policy.offload-needs-6.2',
          'Error: duplicate "unknown": "offload" is the second value.',
        );
      args.next('offload');
      const m = args.next('offload');
      if (m !== 'packet')
        throw toolError('iproute2.xfrm-policy.offload-syntax', `Error: argument "${m}" is wrong: Invalid offload mode`);
      const d = args.next('offload');
      if (d !== 'dev')
        throw toolError('iproute2.xfrm-policy.offload-syntax', `Error: argument "${d}" is wrong: Missing dev keyword`);
      offload = { dev: args.next('offload dev') };
    } else if (t === 'src' || t === 'dst' || t === 'proto') {
      if (sel)
        throw toolError('iproute2.xfrm-policy.unknown-arg', `Error: duplicate "unknown": "${t}" is the second value.`);
      sel = parseSelector(args, false);
    } else {
      throw new UnmodeledCommand(`the xfrm policy keyword ${JSON.stringify(t)}`);
    }
  }
  if (!sel || !dir) throw new UnmodeledCommand('an xfrm policy without selector and dir');
  return { verb, sel, dir, priority, ptype, action, tmpls, ...(offload ? { offload } : {}) };
}

/** `xfrm policy delete|get SELECTOR dir DIR` */
export function parsePolicyId(argv: string[]): PolicyId {
  const args = new Args(argv);
  let sel: Selector | undefined;
  let dir: PolicyId['dir'] | undefined;
  while (!args.done()) {
    if (args.peek() === 'dir') {
      args.next('dir');
      const v = args.next('dir');
      if (v !== 'in' && v !== 'out' && v !== 'fwd') throw new UnmodeledCommand(`policy dir ${v}`);
      dir = v;
    } else {
      if (sel) throw new UnmodeledCommand(`policy id token ${args.peek()}`);
      sel = parseSelector(args, false);
    }
  }
  if (!sel || !dir) throw new UnmodeledCommand('an xfrm policy id without selector and dir');
  return { sel, dir };
}

export function sameSelector(a: Selector, b: Selector): boolean {
  return (
    a.src === b.src &&
    a.dst === b.dst &&
    a.proto === b.proto &&
    (a.sport ?? 0) === (b.sport ?? 0) &&
    (a.dport ?? 0) === (b.dport ?? 0)
  );
}

/**
 * The SA request as the kernel parses it. Before v6.10 XFRMA_SA_DIR (33) is above XFRMA_MAX and is dropped:
 * net/xfrm/xfrm_user.c xfrm_user_rcv_msg parses with nlmsg_parse_deprecated (liberal), and lib/nlattr.c
 * __nla_validate_parse skips a type > maxtype unless NL_VALIDATE_MAXTYPE or policy[0].strict_start_type says otherwise;
 * xfrma_policy got strict_start_type = XFRMA_SA_DIR only with a4a87fa4e96c (v6.10).
 */
export function kernelView(req: SaRequest, kernel: Version): SaRequest {
  if (req.saDir === undefined || atLeast(kernel, '6.10')) return req;
  const seen = { ...req };
  delete seen.saDir;
  return seen;
}

/** The xfrm core's checks of a new SA (as kernelView() parsed it) before any driver sees it; null when it passes. */
export function xfrmCoreStateCheck(req: SaRequest, kernel: Version): Mlx5Refusal | null {
  // net/xfrm/xfrm_user.c verify_newsa_info/verify_replay (a4a87fa4e96c, v6.10): an output SA carries no replay window
  if (req.saDir === 'out' && req.replayWindow !== 0)
    return netlinkError('xfrm.sa-dir-out-replay-window', 'EINVAL', 'Replay window should be 0 for output SA');
  // net/xfrm/xfrm_replay.c xfrm_init_replay: ESN needs a window; since a4a87fa4e96c (v6.10) except on an SA with dir out
  if (req.esn && req.replayWindow === 0 && !(atLeast(kernel, '6.10') && req.saDir === 'out'))
    return netlinkError('xfrm.esn-replay-window', 'EINVAL', 'ESN replay window must be > 0');
  if (req.offload) {
    // net/xfrm/xfrm_device.c xfrm_dev_state_add: XFRM_OFFLOAD_PACKET is a known flag only since d14f28b8c1de (v6.2)
    if (req.offload.packet && !atLeast(kernel, '6.2'))
      return netlinkError('xfrm.packet-offload-needs-6.2', 'EINVAL', 'Unrecognized flags in offload request');
    // net/xfrm/xfrm_device.c xfrm_dev_state_add (a4a87fa4e96c, v6.10): XFRMA_SA_DIR must match XFRM_OFFLOAD_INBOUND
    if (req.saDir && (req.saDir === 'in') !== req.offload.inbound)
      return netlinkError('xfrm.sa-dir-offload-mismatch', 'EINVAL', 'Mismatched SA and offload direction');
    // net/xfrm/xfrm_device.c xfrm_dev_state_add: TFC padding is never offloaded
    if (req.tfcpad) return netlinkError('xfrm.tfcpad-offload', 'EINVAL', "TFC padding can't be offloaded");
  }
  return null;
}

/** mlx5's device capabilities that its validators test (mlx5_ipsec_device_caps); host facts. */
export interface IpsecCaps {
  crypto: boolean;
  packet: boolean;
  esn: boolean;
  tunnel: boolean;
  espInUdp: boolean;
  prio: boolean;
}

// en_accel/ipsec.c mlx5e_xfrm_validate_policy tests addr6_all_zero(sel->saddr.a6): the address, whatever its prefix
function zeroAddr(a: string | undefined): boolean {
  if (a === undefined) return true;
  const ip = a.split('/')[0]!;
  return ip.includes(':') ? /^[0:]*$/.test(ip) : /^0+(\.0+){3}$/.test(ip);
}

/** en_accel/ipsec.c mlx5e_xfrm_validate_state, as in mainline with the version steps sourced in RULES.md. */
export function mlx5ValidateState(req: SaRequest, caps: IpsecCaps, kernel: Version): Mlx5Refusal | null {
  const bad = (rule: string, msg: string) => netlinkError(rule, 'EINVAL', mlx5(msg));
  const packet = req.offload?.packet ?? false;
  const dirIn = req.offload?.inbound ?? false;
  // mlx5e_xfrm_validate_state: no authentication algorithm beside the AEAD
  if (req.otherAlgs.some((a) => a.startsWith('auth')))
    return bad('mlx5.ipsec.state-no-auth', 'Cannot offload authenticated xfrm states');
  // mlx5e_xfrm_validate_state: props.ealgo must be SADB_X_EALG_AES_GCM_ICV16; net/xfrm/xfrm_algo.c aead_list gives
  // rfc4106(gcm(aes)) with ICV 64/96/128 the ids ICV8/12/16, so only rfc4106(gcm(aes)) with a 128-bit ICV passes
  if (
    !req.aead ||
    req.aead.name !== 'rfc4106(gcm(aes))' ||
    req.aead.icvBits !== 128 ||
    req.otherAlgs.some((a) => a.startsWith('enc'))
  ) {
    return bad('mlx5.ipsec.state-aes-gcm-icv16', 'Only AES-GCM-ICV16 xfrm state may be offloaded');
  }
  // mlx5e_xfrm_validate_state: no compression
  if (req.otherAlgs.some((a) => a.startsWith('comp')))
    return bad('mlx5.ipsec.state-no-comp', 'Cannot offload compressed xfrm states');
  // mlx5e_xfrm_validate_state: ESN only with MLX5_IPSEC_CAP_ESN
  if (req.esn && !caps.esn) return bad('mlx5.ipsec.state-esn-cap', 'Cannot offload ESN xfrm states');
  // mlx5e_xfrm_validate_state: ESP only
  if (req.proto !== 50) return bad('mlx5.ipsec.state-esp-only', 'Only ESP xfrm state may be offloaded');
  if (req.encap !== undefined) {
    // mlx5e_xfrm_validate_state: UDP encapsulation needs MLX5_IPSEC_CAP_ESPINUDP, espinudp, packet mode, transport mode
    if (!caps.espInUdp) return bad('mlx5.ipsec.state-encap', 'Encapsulation is not supported');
    if (req.encap !== 'espinudp') return bad('mlx5.ipsec.state-encap', 'Encapsulation other than UDP is not supported');
    if (!packet) return bad('mlx5.ipsec.state-encap', 'Encapsulation is supported in packet offload mode only');
    if (req.mode !== 'transport')
      return bad('mlx5.ipsec.state-encap', 'Encapsulation is supported in transport mode only');
  }
  // mlx5e_xfrm_validate_state: 128- or 256-bit AES key plus the 32-bit salt
  if (req.aead.keyBits !== 128 + 32 && req.aead.keyBits !== 256 + 32)
    return bad('mlx5.ipsec.state-key-length', 'Cannot offload xfrm states with AEAD key length other than 128/256 bit');
  // mlx5e_xfrm_validate_state: upper protocol. None before 6.3; UDP and TX only from "IPsec, support upper protocol
  // selector field offload" (v6.3); UDP both ways from c94f442c (v6.6); TCP too from 189e0787 (v6.6)
  if (atLeast(kernel, '6.6')) {
    if (req.sel.proto !== 0 && req.sel.proto !== 17 && req.sel.proto !== 6)
      return bad('mlx5.ipsec.state-upper-proto', 'Device does not support upper protocol other than TCP/UDP');
  } else if (atLeast(kernel, '6.3')) {
    if (req.sel.proto !== 0 && (req.sel.proto !== 17 || dirIn))
      return bad(
        'mlx5.ipsec.state-upper-proto',
        'Device does not support upper protocol other than UDP, and only Tx direction',
      );
  }
  // mlx5e_xfrm_validate_state: transport and tunnel modes only
  if (req.mode !== 'transport' && req.mode !== 'tunnel')
    return bad('mlx5.ipsec.state-mode', 'Only transport and tunnel xfrm states may be offloaded');
  if (!packet) {
    // mlx5e_xfrm_validate_state: crypto offload needs MLX5_IPSEC_CAP_CRYPTO
    if (!caps.crypto) return bad('mlx5.ipsec.state-crypto-cap', 'Crypto offload is not supported');
    return null;
  }
  // mlx5e_xfrm_validate_state: packet offload needs MLX5_IPSEC_CAP_PACKET_OFFLOAD
  if (!caps.packet) return bad('mlx5.ipsec.state-packet-cap', 'Packet offload is not supported');
  // mlx5e_xfrm_validate_state: tunnel mode in packet offload needs MLX5_IPSEC_CAP_TUNNEL
  if (req.mode === 'tunnel' && !caps.tunnel)
    return bad('mlx5.ipsec.state-tunnel-cap', 'Packet offload is not supported for tunnel mode');
  // mlx5e_xfrm_validate_state: an inbound packet-offload SA with replay state needs a window of 32/64/128/256
  if ((req.esn || req.replayWindow > 32) && dirIn && ![32, 64, 128, 256].includes(req.replayWindow))
    return bad('mlx5.ipsec.state-replay-window', 'Unsupported replay window size');
  // mlx5e_xfrm_validate_state: packet offload needs a reqid (it steers SA and policy together)
  if (!req.reqid) return bad('mlx5.ipsec.state-reqid', 'Cannot offload without reqid');
  // the lifetime checks (soft < hard, neither 0) pass: the parser refuses "limit", so iproute2 sends XFRM_INF
  return null;
}

/** en_accel/ipsec.c mlx5e_xfrm_validate_policy. */
export function mlx5ValidatePolicy(req: PolicyRequest, caps: IpsecCaps, kernel: Version): Mlx5Refusal | null {
  const bad = (rule: string, msg: string) => netlinkError(rule, 'EINVAL', mlx5(msg));
  // mlx5e_xfrm_validate_policy: main policies only
  if (req.ptype !== 'main') return bad('mlx5.ipsec.policy-main-only', 'Cannot offload non-main policy types');
  // mlx5e_xfrm_validate_policy: one template at most
  if (req.tmpls.length > 1) return bad('mlx5.ipsec.policy-one-template', 'Cannot offload more than one template');
  // mlx5e_xfrm_validate_policy: in and out only, no fwd
  if (req.dir === 'fwd') return bad('mlx5.ipsec.policy-no-fwd', 'Cannot offload forward policy');
  const reqid = req.tmpls[0]?.reqid ?? 0;
  if (atLeast(kernel, '6.4')) {
    // mlx5e_xfrm_validate_policy since cbcadde3 "Allow policies with reqid 0" (xfrm-next 2023-03, v6.4)
    if (!reqid && req.sel.proto === 0 && zeroAddr(req.sel.src) && zeroAddr(req.sel.dst))
      return bad(
        'mlx5.ipsec.policy-reqid',
        'Unsupported policy with reqid 0 without at least one of upper protocol or ip addr(s) different than 0',
      );
  } else if (!reqid) {
    // mlx5e_xfrm_validate_policy before cbcadde3: a reqid is required
    return bad('mlx5.ipsec.policy-reqid', 'Cannot offload policy without reqid');
  }
  // mlx5e_xfrm_validate_policy: same upper-protocol steps as the state (v6.3 UDP/TX only, v6.6 UDP/TCP both ways)
  if (atLeast(kernel, '6.6')) {
    if (req.sel.proto !== 0 && req.sel.proto !== 17 && req.sel.proto !== 6)
      return bad('mlx5.ipsec.policy-upper-proto', 'Device does not support upper protocol other than TCP/UDP');
  } else if (atLeast(kernel, '6.3')) {
    if (req.sel.proto !== 0 && (req.sel.proto !== 17 || req.dir !== 'out'))
      return bad(
        'mlx5.ipsec.policy-upper-proto',
        'Device does not support upper protocol other than UDP, and only Tx direction',
      );
  }
  if (req.priority) {
    // mlx5e_xfrm_validate_policy: a priority needs MLX5_IPSEC_CAP_PRIO, and U32_MAX is reserved
    if (!caps.prio) return bad('mlx5.ipsec.policy-prio', 'Device does not support policy priority');
    if (req.priority === 0xffffffff)
      return bad('mlx5.ipsec.policy-prio', 'Device does not support requested policy priority');
  }
  // mlx5e_xfrm_validate_policy: packet offload capability
  if (!caps.packet) return bad('mlx5.ipsec.policy-packet-cap', 'Packet offload is not supported');
  return null;
}
