// `tc filter ... flower ...` as tc parses it, for the forms vfwire emits (tc/f_flower.c, tc/m_tunnel_key.c,
// tc/m_mirred.c, tc/m_gact.c). Anything else is refused as unmodeled: the model cannot judge it.

import { UnmodeledCommand } from './refusal.js';

export type TcAction =
  | { kind: 'encap'; vni: number; src: string; dst: string; dstPort: number; csum: boolean }
  | { kind: 'decap' }
  | { kind: 'mirred'; mode: 'redirect' | 'mirror'; dev: string }
  | { kind: 'drop' };

export interface FlowerFilter {
  verb: 'add' | 'replace' | 'del';
  dev: string;
  pref: number;
  handle: number;
  protocol: string;
  skipSw: boolean;
  skipHw: boolean;
  /** Match keys as given (src_mac, dst_mac, enc_key_id, enc_src_ip, enc_dst_ip, enc_dst_port). */
  match: Record<string, string>;
  actions: TcAction[];
}

const MATCH_KEYS = new Set(['src_mac', 'dst_mac', 'enc_key_id', 'enc_src_ip', 'enc_dst_ip', 'enc_dst_port']);

function int(tok: string | undefined, what: string): number {
  if (tok === undefined) throw new UnmodeledCommand(`tc ${what} without a value`);
  const n = /^0x[0-9a-f]+$/i.test(tok) ? parseInt(tok, 16) : /^\d+$/.test(tok) ? Number(tok) : NaN;
  if (Number.isNaN(n)) throw new UnmodeledCommand(`tc ${what} ${JSON.stringify(tok)}`);
  return n;
}

/** argv after "tc [-n NS] filter". */
export function parseFlower(argv: string[]): FlowerFilter {
  const a = [...argv];
  let i = 0;
  const next = (what: string) => {
    const t = a[i++];
    if (t === undefined) throw new UnmodeledCommand(`tc filter: missing ${what}`);
    return t;
  };
  const verb = next('verb');
  if (verb !== 'add' && verb !== 'replace' && verb !== 'del' && verb !== 'delete')
    throw new UnmodeledCommand(`tc filter ${verb}`);
  let dev: string | undefined;
  let pref: number | undefined;
  let handle: number | undefined;
  let protocol = 'all';
  let ingress = false;
  for (;;) {
    const t = a[i];
    if (t === 'dev') {
      i++;
      dev = next('dev');
    } else if (t === 'ingress') {
      i++;
      ingress = true;
    } else if (t === 'pref' || t === 'prio' || t === 'priority') {
      i++;
      pref = int(next('pref'), 'pref');
    } else if (t === 'handle') {
      i++;
      handle = int(next('handle'), 'handle');
    } else if (t === 'protocol') {
      i++;
      protocol = next('protocol');
    } else break;
  }
  const kind = next('filter kind');
  if (kind !== 'flower') throw new UnmodeledCommand(`the tc filter kind ${kind}`);
  if (!dev || !ingress || pref === undefined || handle === undefined)
    throw new UnmodeledCommand('a tc filter without dev, ingress, pref and handle');
  const f: FlowerFilter = {
    verb: verb === 'delete' ? 'del' : verb,
    dev,
    pref,
    handle,
    protocol,
    skipSw: false,
    skipHw: false,
    match: {},
    actions: [],
  };
  if (f.verb === 'del') {
    if (i !== a.length) throw new UnmodeledCommand('a tc filter del with flower options');
    return f;
  }
  while (i < a.length) {
    const t = next('flower option');
    if (t === 'skip_sw') f.skipSw = true;
    else if (t === 'skip_hw') f.skipHw = true;
    else if (MATCH_KEYS.has(t)) f.match[t] = next(t);
    else if (t === 'action') break;
    else throw new UnmodeledCommand(`the flower option ${JSON.stringify(t)}`);
  }
  while (i < a.length) {
    const t = next('action');
    if (t === 'tunnel_key') {
      const op = next('tunnel_key');
      if (op === 'unset') {
        f.actions.push({ kind: 'decap' });
      } else if (op === 'set') {
        const e: { vni?: number; src?: string; dst?: string; dstPort?: number; csum: boolean } = { csum: true };
        while (i < a.length && a[i] !== 'action') {
          const k = next('tunnel_key set');
          if (k === 'id') e.vni = int(next('id'), 'id');
          else if (k === 'src_ip') e.src = next('src_ip');
          else if (k === 'dst_ip') e.dst = next('dst_ip');
          else if (k === 'dst_port') e.dstPort = int(next('dst_port'), 'dst_port');
          else if (k === 'nocsum') e.csum = false;
          else if (k === 'csum') e.csum = true;
          else throw new UnmodeledCommand(`the tunnel_key option ${JSON.stringify(k)}`);
        }
        if (e.vni === undefined || !e.src || !e.dst || e.dstPort === undefined)
          throw new UnmodeledCommand('a tunnel_key set without id, src_ip, dst_ip and dst_port');
        f.actions.push({ kind: 'encap', vni: e.vni, src: e.src, dst: e.dst, dstPort: e.dstPort, csum: e.csum });
      } else throw new UnmodeledCommand(`tunnel_key ${op}`);
    } else if (t === 'mirred') {
      const dir = next('mirred direction');
      const mode = next('mirred mode');
      const d = next('mirred dev');
      if (dir !== 'egress' || (mode !== 'redirect' && mode !== 'mirror') || d !== 'dev')
        throw new UnmodeledCommand(`mirred ${dir} ${mode} ${d}`);
      f.actions.push({ kind: 'mirred', mode, dev: next('mirred dev') });
    } else if (t === 'drop') {
      f.actions.push({ kind: 'drop' });
    } else {
      throw new UnmodeledCommand(`the tc action ${JSON.stringify(t)}`);
    }
    if (i < a.length) {
      const sep = next('action separator');
      if (sep !== 'action') throw new UnmodeledCommand(`tc action token ${JSON.stringify(sep)}`);
    }
  }
  return f;
}
