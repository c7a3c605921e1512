// Members joining and leaving a VNI: the steps that bring its rules from the old membership to
// the new one, the joiners' own rules owned by their leases and the VNI-wide rewrite unrecorded.

import { ValidationError } from '../../errors.js';
import { tc } from '../../exec/tools.js';
import type { Step } from '../../exec/step.js';
import {
  ruleId,
  ruleKey,
  TC_UNRECORDED_OWNER,
  type TcFlowerHost,
  type TcMember,
  type TcRule,
  type TcVniState,
} from './model.js';
import { addRule, delRule } from './rule-commands.js';
import { tcVniRules } from './rules.js';

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
