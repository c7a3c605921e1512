// The ledger's on-disk shape. Bump LEDGER_SCHEMA on any incompatible change; a reader refuses
// a ledger newer than itself rather than guess.

import type { Command } from '../exec/step.js';

export const LEDGER_SCHEMA = 1;

export type LeaseState = 'preparing' | 'active';

/**
 * How the VM gets the VF: a PCI hostdev (real backend), the tap that is its representor (the
 * sim's libvirt host), or, for the sim's netns guests, nothing libvirt does at all.
 */
export type AttachKind = 'hostdev' | 'ethernet' | 'netns';

export interface Lease {
  /** `${uuid}/${index}` */
  key: string;
  vm: string;
  uuid: string;
  index: number;
  pf: string;
  vf: number;
  /** PCI address of the VF, e.g. 0000:3b:00.2 */
  pci: string;
  /** VF netdev in the host, when it has one (sim: the guest end of the pair). */
  vfDev?: string;
  rep: string;
  vni: number;
  mac: string;
  mtu: number;
  /** ISO time the lease was taken. */
  since: string;
  state: LeaseState;
  attach: AttachKind;
  /** ISO time the device was attached to the running VM (live attach); absent until then. */
  attachedAt?: string;
  /** Undo commands of this lease's applied steps, in the order they were applied. */
  undo: Command[];
}

/** Leases that become a device of the running VM (a sim netns guest's VF moves by itself). */
export function needsLiveAttach(lease: Pick<Lease, 'attach'>): boolean {
  return lease.attach !== 'netns';
}

export interface VniState {
  vni: number;
  /** Keys of the leases on this VNI; the overlay goes when the last one does. */
  members: string[];
  /** Peers this host replicates the VNI's BUM traffic to (underlay addresses). */
  peers: string[];
  undo: Command[];
  /** Set for a tc-flower VNI: where its rules live and run (`policy` absent: skip_sw, the NIC), to recompute them when members leave. */
  tc?: { netns?: string; underlayAddress: string; policy?: 'skip_hw' | 'none' };
  /** Set for an OVS VNI: the bridge its rules are on, to rewrite them when members leave. */
  ovs?: OvsVniHost;
}

/** Where an OVS VNI's rules live: the bridge, and the run directory of the daemons serving it. */
export interface OvsVniHost {
  bridge: string;
  runDir: string;
}

/** The SAs `vfwire ipsec up` installed to one peer (never the keys). */
export interface SaFacts {
  dir: 'out' | 'in';
  src: string;
  dst: string;
  spi: number;
  reqid: number;
}

export interface PeerSaState {
  /** Fingerprint of the key file's seed the SAs come from (absent in ledgers of older vfwire). */
  key?: string;
  epoch: number;
  /** This epoch's outbound and inbound SA. */
  sas: SaFacts[];
  /** The next epochs' inbound SAs, installed ahead: the peer may move on first (pair-plan.ts). */
  lookahead?: SaFacts[];
  /** The newest epoch the peer was heard sending on. */
  confirmed?: number;
  /** The netdev the SAs are offloaded to (absent: underlay.interface); failover pf-switch moves them. */
  uplink?: string;
  installedAt: string;
  undo: Command[];
  /** A rotation to a new key file under way (vfwire ipsec rotate): its SAs installed so far. */
  rotating?: { key?: string; epoch: number; phase: 'receiving' | 'sending'; sas: SaFacts[] };
}

export interface IpsecState {
  /** Installed in this boot, by peer name. */
  peers: Record<string, PeerSaState>;
  /**
   * `<key fingerprint>:<spi>` of every outbound SA ever installed. Kept across reboots: an SA
   * installed again would restart its sequence numbers, and AES-GCM would reuse nonces under
   * that key. (Inbound SAs send nothing: their nonces are the peer's, guarded there.)
   */
  used: string[];
  /**
   * The tc-flower rules were taken down for the first SAs (ipsec/tc-order.ts) and are not back:
   * nothing may write them (a join, a leave's rewrite) until IPsec brings them back.
   */
  tcRulesDown?: true;
}

export interface LedgerData {
  schema: number;
  /** The kernel boot the leases belong to; a reboot took their kernel objects and VMs away. */
  bootId?: string;
  leases: Record<string, Lease>;
  /** Keyed by the VNI in decimal. */
  vnis: Record<string, VniState>;
  ipsec?: IpsecState;
}

export function emptyLedger(): LedgerData {
  return { schema: LEDGER_SCHEMA, leases: {}, vnis: {} };
}

export function leaseKey(uuid: string, index: number): string {
  return `${uuid}/${index}`;
}
