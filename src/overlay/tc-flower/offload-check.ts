// doctor's question for tc-flower: are the rules vfwire expects present, and in hardware?

import { parseJsonArray, ruleId, type TcRule } from './model.js';

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
