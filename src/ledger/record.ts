// Pure edits of the ledger data: record a plan's leases before its steps run (so a crash in
// between leaves enough behind for `gc` to undo), mark them active, drop them on release.

import type { Command, Step } from '../exec/step.js';
import type { LedgerData, Lease, VniState } from './types.js';

/** What the ledger keeps of a start's plan (plan/prepare.ts's PreparePlan is one). */
export interface RecordablePlan {
  /** New leases, state 'preparing', undo still empty (the executor fills it). */
  leases: Lease[];
  /** VNIs the plan creates, with the peers they replicate to. */
  newVnis: { vni: number; peers: string[]; tc?: VniState['tc']; ovs?: VniState['ovs'] }[];
  /** Live VNIs whose peers changed in the config: their new peer list, recorded once applied. */
  peerUpdates: { vni: number; peers: string[] }[];
  steps: Step[];
}

/** Record the plan's leases and new VNIs, with the undo of every step the plan will run. */
export function recordPlan(data: LedgerData, plan: RecordablePlan): void {
  for (const { vni, peers, tc, ovs } of plan.newVnis) {
    data.vnis[String(vni)] = {
      vni,
      members: [],
      peers,
      undo: undoOf(plan, (o) => o.kind === 'vni' && o.vni === vni),
      ...(tc ? { tc } : {}),
      ...(ovs ? { ovs } : {}),
    };
  }
  for (const lease of plan.leases) {
    data.leases[lease.key] = { ...lease, undo: undoOf(plan, (o) => o.kind === 'lease' && o.key === lease.key) };
    data.vnis[String(lease.vni)]!.members.push(lease.key);
  }
}

/** Once a plan's steps ran: live VNIs take their new peers, and the undo of the entries added. */
export function recordPeerUpdates(data: LedgerData, plan: RecordablePlan): void {
  for (const { vni, peers } of plan.peerUpdates) {
    const state = data.vnis[String(vni)];
    if (!state) continue;
    state.peers = peers;
    state.undo.push(...undoOf(plan, (o) => o.kind === 'vni' && o.vni === vni));
  }
}

export function markActive(data: LedgerData, keys: string[]): void {
  for (const key of keys) {
    const lease = data.leases[key];
    if (lease) lease.state = 'active';
  }
}

/** Remove leases and their VNI memberships; returns the VNIs left without members (removed too). */
export function dropLeases(data: LedgerData, keys: string[]): VniState[] {
  const emptied: VniState[] = [];
  for (const key of keys) {
    const lease = data.leases[key];
    if (!lease) continue;
    delete data.leases[key];
    const vni = data.vnis[String(lease.vni)];
    if (!vni) continue;
    vni.members = vni.members.filter((m) => m !== key);
    if (vni.members.length === 0) {
      delete data.vnis[String(lease.vni)];
      emptied.push(vni);
    }
  }
  return emptied;
}

/**
 * Leases recorded in an earlier boot of the kernel describe objects and VMs that are gone: drop
 * them (replaying their undo could only hit objects of this boot) and stamp the ledger with the
 * current boot. Returns how many leases were dropped.
 */
export function forgetEarlierBoot(data: LedgerData, bootId: string): number {
  const earlier = data.bootId !== undefined && data.bootId !== bootId;
  const stale = earlier ? Object.keys(data.leases).length : 0;
  if (earlier) {
    data.leases = {};
    data.vnis = {};
    // Installed SAs went with the old kernel; the record of used (key, SPI) pairs must not.
    if (data.ipsec) data.ipsec.peers = {};
  }
  data.bootId = bootId;
  return stale;
}

export function leasesOf(data: LedgerData, uuid: string): Lease[] {
  return Object.values(data.leases)
    .filter((l) => l.uuid === uuid)
    .sort((a, b) => a.index - b.index);
}

function undoOf(plan: RecordablePlan, match: (o: RecordablePlan['steps'][number]['owner']) => boolean): Command[] {
  return plan.steps.filter((s) => match(s.owner) && s.undo).map((s) => s.undo!);
}
