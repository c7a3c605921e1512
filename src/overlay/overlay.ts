// One interface for the overlays, chosen once from the config (overlayFor): the planners ask it
// how a VF's representor joins and leaves its VNI, host setup what it keeps on the host, doctor
// what to check, and none of them branches on the overlay kind. A new overlay (OVS, say) is a
// new implementation of this, nothing else. Joins and leaves are pure, like the renderers
// behind them.

import type { CheckResult } from '../check-result.js';
import type { Config } from '../config/config.js';
import type { Runner } from '../exec/runner.js';
import type { Command, Step } from '../exec/step.js';
import type { LedgerData, VniState } from '../ledger/types.js';
import type { AdmissionPeer } from './admission.js';
import { bridgeLeave, bridgeOverlay } from './bridge-overlay.js';
import { ovsLeave, ovsOverlay } from './ovs-overlay.js';
import { tcFlowerLeave, tcFlowerOverlay } from './tc-flower-overlay.js';

/** The VF a lease brings to its VNI. */
export interface Member {
  leaseKey: string;
  rep: string;
  mac: string;
  /** The VF's PCI address. */
  pci: string;
  /** The guest's MTU on it. */
  mtu: number;
}

/** A VNI as a join sees it: the ledger's state and what this plan already did to it. */
export interface VniView {
  vni: number;
  /** The VNI's recorded state; undefined while it has no member. */
  live?: { peers: string[] };
  /** An earlier interface of this plan created or updated it already. */
  plannedHere: boolean;
  /** Its configured peers' underlay addresses now. */
  peers: string[];
  /** Who its VXLAN may come from and go to (admission.ts). */
  admission: AdmissionPeer[];
  /** Its members before this one: the ledger's, then this plan's, in that order. */
  members: Member[];
}

export interface JoinResult {
  /** The VF's own steps and the overlay's, in the order this overlay needs them. */
  steps: Step[];
  /** The join creates the VNI: record it with these peers (and, for tc-flower, its rules' host). */
  newVni?: { peers: string[]; tc?: VniState['tc']; ovs?: VniState['ovs'] };
  /** The join brings a live VNI's peers up to date: record the new list once applied. */
  peerUpdate?: { peers: string[] };
}

export interface Overlay {
  readonly kind: Config['overlay'];
  /**
   * A VF joins its VNI. `vfSteps` program the VF itself; `firstInPlan`: no interface of this plan
   * joined before (per-plan host checks go once).
   */
  join(view: VniView, member: Member, vfSteps: Step[], firstInPlan: boolean): JoinResult;
  /** Every start needs its VNI's SAs, encrypt off too (tc rules may exist only beside the SAs). */
  readonly sasForEveryStart: boolean;
  /**
   * A start's trailing lease-owned steps (the VF's own, its representor's join) may run outside
   * the ledger lock: they touch only what the recorded lease reserves (plan/unlocked-steps.ts).
   */
  readonly ownStepsUnlocked: boolean;
  /** Host setup: what the overlay keeps on the host for all VNIs, read first, only what differs. */
  hostSteps(runner: Runner): Promise<Step[]>;
  leave: Leave;
  /** doctor: the overlay's state on the host against what the ledger says it should be. Reads only. */
  check(runner: Runner, ledger: LedgerData): Promise<CheckResult[]>;
  /**
   * gc: what the overlay holds on the host that the ledger does not account for, beyond the
   * netdevs gc finds by name (gc/plan-gc.ts). `poolReps`: the representors of every VF vfwire
   * may lease (host/pool.ts). Reads only; a read that fails throws.
   */
  leftovers(runner: Runner, ledger: LedgerData, poolReps: string[]): Promise<Leftover[]>;
}

/** Something on the host no lease accounts for, and the command that removes it. */
export interface Leftover {
  line: string;
  command: Command;
}

/**
 * Leases leave a VNI: the overlay's steps that go *before* the leaving leases' recorded undo
 * (which removes what each join made). Computed from the ledger, never the config.
 */
export type Leave = (ledger: LedgerData, vni: number, leaving: string[]) => Step[];

export function overlayFor(cfg: Config): Overlay {
  if (cfg.overlay === 'ovs') return ovsOverlay(cfg);
  return cfg.overlay === 'tc-flower' ? tcFlowerOverlay(cfg) : bridgeOverlay(cfg);
}

/** How a VNI's members leave, from how its first join recorded it: the config may have changed since. */
export function recordedLeave(state: VniState): Leave {
  if (state.ovs) return ovsLeave;
  return state.tc ? tcFlowerLeave : bridgeLeave;
}
