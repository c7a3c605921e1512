// doctor's line for the underlay admission: every live VNI's nftables chains are in place; without
// them any underlay address could send into the VNI (admission.ts). Common to every overlay.

import { fail, pass, type CheckResult } from '../check-result.js';
import { type Config, vxlanSocketNetns } from '../config/config.js';
import { oneLine } from '../errors.js';
import type { Runner } from '../exec/runner.js';
import type { LedgerData } from '../ledger/types.js';
import { readAdmission } from './admission.js';

export async function admissionCheck(cfg: Config, runner: Runner, ledger: LedgerData): Promise<CheckResult> {
  const vnis = Object.values(ledger.vnis).map((v) => v.vni);
  const netns = vxlanSocketNetns(cfg);
  let shown;
  try {
    shown = await readAdmission(runner, netns);
  } catch (err) {
    // No nft at all, say: every start needs it.
    return fail(
      'underlay admission',
      `nft: ${oneLine(err)}`,
      "apt-get install nftables (every VM start writes its VNI's admission with it)",
    );
  }
  if (vnis.length === 0) return pass('underlay admission', 'no live VNIs');
  const missing = vnis.filter((v) => !shown.vnis.has(v));
  const wrong = [
    ...(shown.hooked ? [] : ['no input/output hooks']),
    ...(missing.length ? [`VNI(s) ${missing.join(', ')} take VXLAN from any address and send it in clear`] : []),
  ];
  if (wrong.length)
    return fail(
      'underlay admission',
      wrong.join('; '),
      'restart the VMs of those VNIs (their first start writes the chains)',
    );
  return pass(
    'underlay admission',
    vnis.map((v) => `VNI ${v} from ${shown.vnis.get(v)!.join(', ') || 'no peer'}`).join('; '),
  );
}
