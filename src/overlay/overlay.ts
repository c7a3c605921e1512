// One interface for the overlays, chosen once from the config (overlayFor): the planner asks it
// how a VF's representor joins its VNI and never branches on the overlay kind. A new overlay
// (OVS, say) is a new implementation of this, nothing else. Pure, like the renderers behind it.

import type { Config } from '../config/config.js';
import type { Runner } from '../exec/runner.js';
import type { Step } from '../exec/step.js';
import type { AdmissionPeer } from './admission.js';
import { bridgeOverlay } from './bridge-overlay.js';
import { tcFlowerOverlay } from './tc-flower-overlay.js';

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
  newVni?: { peers: string[]; tc?: { netns?: string; underlayAddress: string; policy?: 'skip_hw' | 'none' } };
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
  /** Host setup: what the overlay keeps on the host for all VNIs, read first, only what differs. */
  hostSteps(runner: Runner): Promise<Step[]>;
}

export function overlayFor(cfg: Config): Overlay {
  return cfg.overlay === 'tc-flower' ? tcFlowerOverlay(cfg) : bridgeOverlay(cfg);
}
