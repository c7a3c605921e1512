// doctor's lines for tc-flower: the rules the ledger implies are in the kernel and in hardware,
// and the NIC can use the encap ones (a resolved neighbour towards each peer).

import { fail, pass, warn, type CheckResult } from '../../check-result.js';
import type { Config } from '../../config/config.js';
import { oneLine } from '../../errors.js';
import { ifPresent } from '../../exec/if-present.js';
import type { Runner } from '../../exec/runner.js';
import { tc } from '../../exec/tools.js';
import { peerNeighbour } from '../../host/neighbour.js';
import type { LedgerData } from '../../ledger/types.js';
import { tcVniStateOf } from './members.js';
import { checkTcOffload, parseTcFilterShow, type TcFilterStatus } from './offload-check.js';
import { tcVniRules } from './rules.js';

export async function tcFlowerChecks(cfg: Config, runner: Runner, ledger: LedgerData): Promise<CheckResult[]> {
  const out = [await offloadCheck(cfg, runner, ledger)];
  if (cfg.tcPolicy !== 'skip_hw') out.push(...(await neighbourChecks(cfg, runner, ledger)));
  return out;
}

// Every rule the ledger's tc-flower VNIs imply must be in the kernel and report in_hw: a rule
// that runs in software only means the overlay runs at CPU speed, or not at all (skip_sw).
async function offloadCheck(cfg: Config, runner: Runner, ledger: LedgerData): Promise<CheckResult> {
  const check = 'tc-flower rules';
  const expected = Object.values(ledger.vnis).flatMap((v) =>
    v.tc ? tcVniRules(v.tc, tcVniStateOf(ledger, v.vni)) : [],
  );
  if (expected.length === 0) return pass(check, 'no leases on tc-flower VNIs');
  const shown = new Map<string, TcFilterStatus[]>();
  for (const dev of new Set(expected.map((r) => r.dev))) {
    // A device that is gone has no rules; any other failure is not "missing rules".
    let text;
    try {
      text = await ifPresent(runner.run({ argv: tc(cfg.netns, '-j', '-s', 'filter', 'show', 'dev', dev, 'ingress') }));
    } catch (err) {
      return fail(check, `could not read ${dev}'s rules: ${oneLine(err)}`, 'see the detail (tc filter show)');
    }
    shown.set(dev, text ? parseTcFilterShow(text.stdout, dev) : []);
  }
  // skip_hw rules run in the kernel: present is all they can be.
  const softOnly = cfg.tcPolicy === 'skip_hw';
  const bad = checkTcOffload(expected, shown).filter((c) => (softOnly ? c.state === 'missing' : c.state !== 'in_hw'));
  const where = softOnly ? 'in the kernel (tc_policy skip_hw)' : 'in_hw';
  if (!bad.length) return pass(check, `${expected.length} rules ${where}`);
  const first = bad
    .slice(0, 3)
    .map((b) => b.detail)
    .join('; ');
  const detail = `${bad.length} of ${expected.length} ${softOnly ? 'missing' : 'not in hardware'}: ${first}`;
  // With tc_policy none the kernel runs what the NIC did not take: slower, not broken.
  if (cfg.tcPolicy === 'none' && bad.every((b) => b.state === 'not_in_hw'))
    return warn(check, detail, 'see the detail (the kernel runs these rules meanwhile)');
  return fail(check, detail, 'see the detail; vfwire gc, or restart the VMs');
}

// in_hw is not enough for an encap rule: the NIC uses it only with a resolved neighbour towards
// the peer (host/neighbour.ts); until then a skip_sw rule's traffic goes nowhere.
async function neighbourChecks(cfg: Config, runner: Runner, ledger: LedgerData): Promise<CheckResult[]> {
  const peers = [...new Set(Object.values(ledger.vnis).flatMap((v) => (v.tc && v.members.length ? v.peers : [])))];
  return Promise.all(
    peers.map(async (peer) => {
      const check = `neighbour of ${peer}`;
      try {
        const n = await peerNeighbour(runner, cfg.netns, peer);
        const at = `${n.via === peer ? '' : `via ${n.via} `}on ${n.dev}`;
        if (n.valid) return pass(check, `${at}: ${n.states.join(' ')}`);
        return fail(
          check,
          `${at}: ${n.states.join(' ') || 'no entry'}; the NIC keeps encap rules to it in its slow path until it resolves, though tc says in_hw`,
          `ping -c 1 ${n.via} from this host (or check the underlay's link and ARP)`,
        );
      } catch (err) {
        return fail(check, oneLine(err), 'check the underlay route to the peer');
      }
    }),
  );
}
