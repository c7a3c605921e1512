// What `vfwire gc` finds of tc-flower's rules that no lease accounts for (a ledger lost, a lease
// dropped by hand): flower rules on the shared VXLAN device that no recorded VNI's rules name
// (decapsulation towards a representor, whatever VNI it was), and an ingress qdisc on a pool
// representor no lease holds, whose rules would go on steering or dropping that VF's traffic
// and make its next lease's `tc qdisc add` fail. What the ledger records is its release's to
// undo, stale lease or not: a tc-flower start runs all of its steps under the ledger lock.

import type { Runner } from '../../exec/runner.js';
import { ifPresent } from '../../exec/if-present.js';
import { tc } from '../../exec/tools.js';
import type { LedgerData } from '../../ledger/types.js';
import type { Leftover } from '../overlay.js';
import { tcVniStateOf } from './members.js';
import { hasIngressQdisc } from './host-device.js';
import { ruleId, ruleKey, vxlanDev, type TcFlowerHost } from './model.js';
import { parseTcFilterShow, type TcFilterStatus } from './offload-check.js';
import { delRule } from './rule-commands.js';
import { tcVniRules } from './rules.js';

export interface TcFound {
  /** The shared VXLAN device's ingress filters; empty when it does not exist. */
  vxlanFilters: TcFilterStatus[];
  /** Pool representors no lease holds that have an ingress qdisc. */
  repsWithQdisc: string[];
}

export async function readTcFound(
  host: TcFlowerHost,
  runner: Runner,
  ledger: LedgerData,
  poolReps: string[],
): Promise<TcFound> {
  const dev = vxlanDev(host);
  const shown = await ifPresent(runner.run({ argv: tc(host.netns, '-j', 'filter', 'show', 'dev', dev, 'ingress') }));
  const held = new Set(Object.values(ledger.leases).map((l) => l.rep));
  const repsWithQdisc: string[] = [];
  for (const rep of poolReps.filter((r) => !held.has(r))) {
    const q = await ifPresent(runner.run({ argv: tc(host.netns, '-j', 'qdisc', 'show', 'dev', rep) }));
    if (q && hasIngressQdisc(q.stdout, rep)) repsWithQdisc.push(rep);
  }
  return { vxlanFilters: shown ? parseTcFilterShow(shown.stdout, dev) : [], repsWithQdisc };
}

export function planTcLeftovers(host: TcFlowerHost, found: TcFound, ledger: LedgerData): Leftover[] {
  const dev = vxlanDev(host);
  const expected = new Set(
    Object.values(ledger.vnis).flatMap((v) =>
      v.tc ? tcVniRules(v.tc, tcVniStateOf(ledger, v.vni)).map((r) => ruleKey(r)) : [],
    ),
  );
  const rules = found.vxlanFilters
    .filter((f) => f.kind === 'flower' && !expected.has(ruleKey({ dev, ...f })))
    .map((f) => ({
      line: `tc rule ${ruleId({ dev, ...f })}: no recorded VNI's`,
      command: delRule(host, { dev, pref: f.pref, handle: f.handle }),
    }));
  const qdiscs = found.repsWithQdisc.map((rep) => ({
    line: `ingress qdisc (and its rules) on representor ${rep}, whose VF no lease holds`,
    command: { argv: tc(host.netns, 'qdisc', 'del', 'dev', rep, 'ingress') },
  }));
  return [...rules, ...qdiscs];
}
