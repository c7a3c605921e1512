// A rule as the tc command that adds, replaces or deletes exactly it (by device, pref, handle).

import { tc } from '../../exec/tools.js';
import type { Command, Step } from '../../exec/step.js';
import { hex, ruleId, TC_UNRECORDED_OWNER, type TcFlowerHost, type TcRule } from './model.js';

export function addRule(host: TcFlowerHost, r: TcRule, verb: 'add' | 'replace'): Command {
  const flag = host.policy === 'none' ? [] : [host.policy ?? 'skip_sw'];
  return { argv: [...ruleAt(host, verb, r), 'protocol', 'all', 'flower', ...flag, ...r.spec] };
}

export function delRule(host: TcFlowerHost, r: Pick<TcRule, 'dev' | 'pref' | 'handle'>): Command {
  return { argv: [...ruleAt(host, 'del', r), 'flower'] };
}

// `tc filter VERB dev D ingress pref P handle H`: the one rule a command touches.
function ruleAt(host: TcFlowerHost, verb: string, r: Pick<TcRule, 'dev' | 'pref' | 'handle'>): string[] {
  return tc(host.netns, 'filter', verb, 'dev', r.dev, 'ingress', 'pref', String(r.pref), 'handle', hex(r.handle));
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
