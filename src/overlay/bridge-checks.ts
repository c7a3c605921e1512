// doctor's line for the bridge overlay: every live VNI has its bridge up, its VXLAN device in it,
// and each member's representor in it. A representor outside its bridge means a VM without a
// network; one in another VNI's bridge would be a tenant leak.

import { fail, pass, type CheckResult } from '../check-result.js';
import { oneLine } from '../errors.js';
import type { Runner } from '../exec/runner.js';
import { ip } from '../exec/tools.js';
import { parseJsonOutput } from '../json-output.js';
import type { LedgerData } from '../ledger/types.js';
import { bridgeName, vxlanName } from './names.js';

interface LinkShown {
  ifname: string;
  master?: string;
  flags?: string[];
}

export async function bridgeChecks(
  netns: string | undefined,
  runner: Runner,
  ledger: LedgerData,
): Promise<CheckResult[]> {
  const check = 'bridge overlay';
  const vnis = Object.values(ledger.vnis).filter((v) => !v.tc && !v.ovs);
  if (vnis.length === 0) return [pass(check, 'no live bridge VNIs')];
  let links: Map<string, LinkShown>;
  try {
    const out = await runner.run({ argv: ip(netns, '-j', 'link', 'show') });
    const shown = parseJsonOutput(out.stdout, 'ip link show') as LinkShown[];
    links = new Map(shown.map((l) => [l.ifname, l]));
  } catch (err) {
    return [fail(check, `could not read the links: ${oneLine(err)}`, 'see the detail (ip link show)')];
  }
  const wrong: string[] = [];
  const fine: string[] = [];
  for (const v of vnis) {
    const br = bridgeName(v.vni);
    const problems: string[] = [];
    const bridge = links.get(br);
    if (!bridge) problems.push(`no ${br}`);
    else if (!bridge.flags?.includes('UP')) problems.push(`${br} is down`);
    const vx = links.get(vxlanName(v.vni));
    if (vx?.master !== br) problems.push(vx ? `${vx.ifname} is not in ${br}` : `no ${vxlanName(v.vni)}`);
    const reps = v.members.flatMap((k) => (ledger.leases[k] ? [ledger.leases[k].rep] : []));
    for (const rep of reps) {
      const l = links.get(rep);
      if (l?.master !== br)
        problems.push(l ? `${rep} is ${l.master ? `in ${l.master}` : 'in no bridge'}` : `no ${rep}`);
    }
    if (problems.length) wrong.push(`VNI ${v.vni}: ${problems.join(', ')}`);
    else fine.push(`VNI ${v.vni}: ${br}, ${reps.length} member(s)`);
  }
  if (wrong.length) return [fail(check, wrong.join('; '), 'vfwire gc, then restart the VMs of those VNIs')];
  return [pass(check, fine.join('; '))];
}
