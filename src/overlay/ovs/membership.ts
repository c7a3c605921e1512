// Members joining and leaving an OVS VNI. A joiner's own steps are its lease's (its representor
// up at the guest's MTU, then a port of the bridge; undone in reverse when the lease goes); the
// VNI's rules are then rewritten whole for the new membership, owned by nobody: their undo
// restores the rules before this join for a rollback of this plan only, and a leave recomputes
// them from the ledger (as tc-flower's replication lists, tc-flower/membership.ts).

import { ip } from '../../exec/tools.js';
import type { Step } from '../../exec/step.js';
import type { LedgerData, OvsVniHost } from '../../ledger/types.js';
import { vniFlowsCommand, type OvsMember, type OvsVni } from './flows.js';
import { OVS_UNRECORDED_OWNER, vsctl, type OvsHost } from './model.js';

export interface OvsJoiner {
  leaseKey: string;
  rep: string;
  mac: string;
  mtu: number;
}

/** The joiner's port, then the VNI's rules from `before` to `before` plus it, on `peers`. */
export function planOvsJoin(host: OvsHost, before: OvsVni, peers: string[], m: OvsJoiner): Step[] {
  const owner = { kind: 'lease', key: m.leaseKey } as const;
  const after: OvsVni = { vni: before.vni, members: [...before.members, { port: m.rep, mac: m.mac }], peers };
  return [
    {
      kind: 'rep-up',
      device: m.rep,
      owner,
      do: { argv: ip(host.netns, 'link', 'set', 'dev', m.rep, 'mtu', String(m.mtu), 'up') },
      undo: { argv: ip(host.netns, 'link', 'set', 'dev', m.rep, 'down') },
    },
    {
      kind: 'ovs-port-add',
      device: m.rep,
      owner,
      // --may-exist: a port left behind by a crash before its undo ran is taken over, not refused.
      // add-port exits 0 when ovs-vswitchd cannot open the device (utilities/ovs-vsctl.c
      // post_db_reload_do_checks only warns; the Interface gets ofport -1), so the rules below are
      // the check: a port without an OpenFlow number fails their in_port (lib/meta-flow.c
      // mf_from_ofp_port_string, "invalid or unknown port") and the start rolls back.
      do: { argv: vsctl(host, '--may-exist', 'add-port', host.bridge, m.rep) },
      undo: { argv: vsctl(host, '--if-exists', 'del-port', host.bridge, m.rep) },
    },
    ovsRulesStep(host, after, before),
  ];
}

/** The VNI's rules without the leaving leases: what a release runs before their recorded undo. */
export function planOvsLeave(host: OvsVniHost, before: OvsVni, leaving: string[], ledger: LedgerData): Step[] {
  const goingReps = new Set(leaving.map((k) => ledger.leases[k]?.rep));
  const after: OvsVni = { ...before, members: before.members.filter((m) => !goingReps.has(m.port)) };
  return [ovsRulesStep(host, after)];
}

/** The VNI as its rules see it, from the ledger: its recorded peers and its members in ledger order. */
export function ovsVniOf(ledger: LedgerData, vni: number): OvsVni {
  const state = ledger.vnis[String(vni)];
  const members: OvsMember[] = (state?.members ?? []).flatMap((key) => {
    const lease = ledger.leases[key];
    return lease ? [{ port: lease.rep, mac: lease.mac }] : [];
  });
  return { vni, members, peers: state?.peers ?? [] };
}

function ovsRulesStep(host: OvsVniHost, now: OvsVni, was?: OvsVni): Step {
  return {
    kind: 'ovs-rules',
    device: `${host.bridge} vni ${now.vni}`,
    owner: OVS_UNRECORDED_OWNER,
    do: vniFlowsCommand(host, now),
    ...(was ? { undo: vniFlowsCommand(host, was) } : {}),
  };
}
