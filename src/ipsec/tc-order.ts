// IPsec and the tc-flower overlay on one mlx5 eswitch: two rules of the driver fix the order.
//
// - The first IPsec rule of a direction creates the NIC's IPsec tables, and is refused while
//   the eswitch holds any offloaded tc flow (366e46242b8e "net/mlx5e: Make IPsec offload work
//   together with eswitch and TC": en_accel/ipsec_fs.c rx_get/tx_get -> eswitch_offloads.c
//   mlx5_eswitch_block_mode, EBUSY).
// - With the last TX rule gone, the encap rules are pointed at the plain uplink again
//   (d1569537a837, esw/ipsec_fs.c mlx5_esw_ipsec_restore_dest_uplink): VXLAN in clear.
//
// So on a tc-flower host the VNIs' rules exist only while the SAs do: installing the first SAs
// (ipsec up after a down, or the watch after an uplink went down and the kernel flushed its
// offloaded SAs and policies, net/xfrm/xfrm_device.c xfrm_dev_down) takes every rule down first,
// puts the SAs in, and brings the rules back only when every peer the rules encapsulate to has
// SAs again; `ipsec down` takes the rules down before the SAs. While the rules are down the VFs'
// traffic reaches nothing (a VF's packets without a rule end at its representor, which is in no
// bridge): fail closed. The plans are pure; takeTcRulesDown and bringTcRulesBack run them inside
// the caller's ledger transaction (ipsec up/down, the watch) and record `ipsec.tcRulesDown`.

import type { Config } from '../config/config.js';
import { undoAll } from '../exec/apply.js';
import type { Runner } from '../exec/runner.js';
import type { LedgerTxn } from '../ledger/store.js';
import type { LedgerData } from '../ledger/types.js';
import type { Logger } from '../log.js';
import { renderTcRulesDown, renderTcRulesUp } from '../overlay/tc-flower/rule-commands.js';
import { tcVniRules } from '../overlay/tc-flower/rules.js';
import { type TcFlowerHost, type TcRule } from '../overlay/tc-flower/model.js';
import type { Step } from '../exec/step.js';
import { tcVniStateOf } from '../overlay/tc-flower/members.js';

interface VniRules {
  host: TcFlowerHost;
  peers: string[];
  rules: TcRule[];
}

// Rules the NIC may hold; skip_hw rules run in the kernel, which has no such order.
function tcVnis(ledger: LedgerData): VniRules[] {
  return Object.values(ledger.vnis).flatMap((v) => {
    if (!v.tc || v.tc.policy === 'skip_hw') return [];
    const host: TcFlowerHost = { ...v.tc, ipsecTx: true };
    return [{ host, peers: v.peers, rules: tcVniRules(host, tcVniStateOf(ledger, v.vni)) }];
  });
}

/** The ledger holds tc-flower rules: installing the first SAs must take them down first. */
export function hasTcRules(ledger: LedgerData): boolean {
  return tcVnis(ledger).some((v) => v.rules.length > 0);
}

/** Underlay addresses the live tc-flower rules encapsulate to. */
export function tcPeerAddresses(ledger: LedgerData): Set<string> {
  return new Set(tcVnis(ledger).flatMap((v) => (v.rules.length ? v.peers : [])));
}

export function tcRulesDown(ledger: LedgerData): Step[] {
  return tcVnis(ledger).flatMap((v) => renderTcRulesDown(v.host, v.rules));
}

/**
 * The rules back, or why not: an encap rule to a peer without SAs would leave in clear (in the
 * eswitch's TX tables a policy miss goes to the SA table, whose miss goes to the uplink:
 * en_accel/ipsec_fs.c tx_create, tx_esw -> MLX5_VPORT_UPLINK), so every peer they reach must be up.
 */
export function tcRulesUp(ledger: LedgerData, peersUp: Set<string>): { steps: Step[] } | { missing: string[] } {
  const missing = [...tcPeerAddresses(ledger)].filter((a) => !peersUp.has(a));
  if (missing.length) return { missing };
  return { steps: tcVnis(ledger).flatMap((v) => renderTcRulesUp(v.host, v.rules)) };
}

/** Takes every tc-flower rule down and records it, so no join or leave writes one meanwhile. */
export async function takeTcRulesDown(txn: LedgerTxn, runner: Runner, log: Logger): Promise<void> {
  const errors = await undoAll(
    tcRulesDown(txn.data).map((st) => st.do),
    runner,
  );
  for (const e of errors) log.warn('ipsec: tc rule removal failed', { error: e.message });
  (txn.data.ipsec ??= { peers: {}, used: [] }).tcRulesDown = true;
  await txn.save();
  log.warn(
    'ipsec: tc-flower rules down until every peer they reach has SAs (mlx5 takes no first SA beside tc rules)',
    {},
  );
}

/** The tc-flower rules back once every peer they encapsulate to has SAs (ledger); else they stay down. */
export async function bringTcRulesBack(
  txn: LedgerTxn,
  cfg: Config,
  runner: Runner,
  log: Logger,
  dryRun?: boolean,
): Promise<{ result: string; steps?: Step[] }> {
  const up = new Set(cfg.peers.filter((p) => txn.data.ipsec?.peers[p.name]).map((p) => p.address));
  const back = tcRulesUp(txn.data, up);
  if ('missing' in back)
    return {
      result: `still down: no SAs to ${back.missing.join(', ')} (VMs on tc-flower VNIs have no network until then)`,
    };
  if (dryRun) return { result: 'planned', steps: back.steps };
  for (const st of back.steps) await runner.run(st.do);
  delete txn.data.ipsec!.tcRulesDown;
  await txn.save();
  log.info('ipsec: tc-flower rules back', { rules: back.steps.length });
  return { result: `back (${back.steps.length})` };
}
