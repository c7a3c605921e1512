// doctor's lines for IPsec: the uplink offloads ESP, the kernel and iproute2 fit ipsec.offload,
// and every peer's SAs are in the kernel (a read that fails says so, never "lost").

import { fail, pass, type CheckResult } from '../check-result.js';
import { type Config, underlayNetns } from '../config/config.js';
import { oneLine } from '../errors.js';
import type { Runner } from '../exec/runner.js';
import { hasEspOffload } from '../host/esp-offload.js';
import type { LedgerData } from '../ledger/types.js';
import { hostXfrmForm } from './host-form.js';
import { lostSas } from './sa-kernel.js';

export async function ipsecChecks(cfg: Config, runner: Runner, ledger: LedgerData | undefined): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const uplink = cfg.underlay.interface;
  const netns = underlayNetns(cfg);
  try {
    const hw = await hasEspOffload(runner, netns, uplink);
    // NETIF_F_HW_ESP is crypto offload; no feature flag says packet offload: the first
    // `offload packet` state is what proves it (mlx5_ipsec_device_caps, checked at ipsec up).
    if (hw)
      out.push(
        pass(
          `${uplink}: ESP offload`,
          `esp-hw-offload: on (crypto offload${cfg.ipsec.offload === 'packet' ? '; packet offload shows at ipsec up' : ''})`,
        ),
      );
    else
      out.push({
        check: `${uplink}: ESP offload`,
        status: cfg.ipsec.offload === 'none' ? 'warn' : 'fail',
        detail: `esp-hw-offload is not on: the NIC cannot encrypt${cfg.ipsec.offload === 'none' ? ' (ipsec.offload: none: the CPU does)' : ''}`,
        fix: 'a NIC with ESP offload (lab notes, step 1), or ipsec.offload: none',
      });
  } catch (err) {
    out.push(fail(`${uplink}: ESP offload`, `ethtool: ${oneLine(err)}`, 'apt-get install ethtool'));
  }
  // The kernel and iproute2 against ipsec.offload: the same judgement `ipsec up` makes.
  try {
    const form = await hostXfrmForm(cfg, runner);
    out.push(
      pass(
        'xfrm form',
        `offload ${form.offload}; ${form.saDir ? 'SA direction named, output SAs with replay-window 0' : "the lab notes' form (no SA direction, a window on both SAs)"}`,
      ),
    );
  } catch (err) {
    out.push(fail('xfrm form', oneLine(err), 'see the detail'));
  }
  for (const peer of cfg.peers) {
    const up = ledger?.ipsec?.peers[peer.name];
    if (!up) {
      out.push(fail(`IPsec to ${peer.name}`, 'no SAs installed', 'vfwire ipsec up'));
      continue;
    }
    // A read that failed is neither: say so, never "lost".
    const missing = await lostSas(runner, netns, [...up.sas, ...(up.lookahead ?? [])]).catch((err: Error) => err);
    if (missing instanceof Error) {
      out.push(
        fail(`IPsec to ${peer.name}`, `could not read the SAs: ${oneLine(missing)}`, 'see the detail (ip xfrm state)'),
      );
      continue;
    }
    out.push(
      missing.length
        ? fail(
            `IPsec to ${peer.name}`,
            `SA(s) gone from the kernel: ${missing.join(', ')} (an uplink that went down takes offloaded SAs with it)`,
            cfg.ipsec.mode === 'static'
              ? 'vfwire ipsec watch --once (moves the pair to a fresh key epoch; run it as a service to do so by itself)'
              : 'vfwire ipsec watch --once (asks strongSwan for new CHILD_SAs)',
          )
        : pass(`IPsec to ${peer.name}`, `epoch ${up.epoch}, ${up.sas.length + (up.lookahead?.length ?? 0)} SAs`),
    );
  }
  return out;
}
