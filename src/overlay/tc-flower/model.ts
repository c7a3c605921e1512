// The VNI overlay in the NIC's eswitch (`overlay: tc-flower`): no bridge and no per-VNI VXLAN
// device, but flower rules with `skip_sw` that mlx5 offloads, so a VF's traffic is encapsulated,
// replicated and decapsulated by the ConnectX without touching the host CPU. This file holds
// the vocabulary the others share: the host, members, rules and their identity on a device.
// host-device.ts makes the one shared VXLAN device, rules.ts computes a VNI's rules,
// rule-commands.ts turns them into tc commands, membership.ts plans joins and leaves,
// offload-check.ts tells doctor whether they are in hardware; ../tc-flower-overlay.ts puts them
// behind the Overlay interface. The kernel-path twin is ../bridge-overlay.ts.

import { ValidationError } from '../../errors.js';
import { PCI_ADDRESS_RE } from '../../identifiers.js';
import { parseJsonOutput } from '../../json-output.js';
import type { StepOwner } from '../../exec/step.js';

/** The one external-mode VXLAN device of a tc-flower host; gc's `vfw(br|vx)<digits>` never matches it. */
export const TC_VXLAN_DEVICE = 'vfwvxlan';

/** mlx5's forward destinations per rule (MLX5_MAX_FLOW_FWD_VPORTS, Linux >= 5.16). */
export const MLX5_MAX_FWD_DESTS = 32;

/**
 * Owner of steps whose undo must never be recorded in the ledger: host state (`host setup`
 * makes and keeps it) and the VNI-wide rules rewritten at every membership change, whose undo
 * is right only for rolling back the plan that made them. The ledger keeps no undo of the host.
 */
export const TC_UNRECORDED_OWNER: StepOwner = { kind: 'host' };

export interface TcFlowerHost {
  /** Where the representors and the VXLAN device live (undefined: this netns). */
  netns?: string;
  /** The local VTEP: the underlay address (on the PF, or on the bond with failover). */
  underlayAddress: string;
  vxlanDevice?: string;
  /** The uplink has IPsec TX tables (vfwire's IPsec is on): encap rules may have one destination only. */
  ipsecTx?: boolean;
  /** Where the rules run (OVS's tc-policy): absent or skip_sw the NIC only, skip_hw the kernel only, none either. */
  policy?: 'skip_sw' | 'skip_hw' | 'none';
}

/** One leased VF on the VNI. */
export interface TcMember {
  leaseKey: string;
  rep: string;
  mac: string;
  /** The VF's PCI address (0000:03:00.2): the source of its rule handles. */
  pci: string;
}

/** What the rules of one VNI are computed from: its peers (fixed for the VNI's life) and members. */
export interface TcVniState {
  vni: number;
  peers: string[];
  members: TcMember[];
}

/** One flower rule as data. `spec` is everything after `flower`: match, then actions. */
export interface TcRule {
  dev: string;
  pref: number;
  handle: number;
  spec: string[];
  /** `lease`: depends on that lease, its VNI and peers only, so its undo stays right until the lease goes. `vni`: rewritten when members change. */
  scope: 'lease' | 'vni';
  leaseKey?: string;
  about: string;
}

/** The device the rules decapsulate on and encapsulate to. */
export function vxlanDev(host: TcFlowerHost): string {
  return host.vxlanDevice ?? TC_VXLAN_DEVICE;
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** A rule's identity on its device: tc finds a rule by device, pref and handle. */
export function ruleKey(r: Pick<TcRule, 'dev' | 'pref' | 'handle'>): string {
  return `${r.dev} ${r.pref} ${r.handle}`;
}

/** The same identity as tc's own words, for step names and doctor's lines. */
export function ruleId(r: Pick<TcRule, 'dev' | 'pref' | 'handle'>): string {
  return `${r.dev} pref ${r.pref} handle ${hex(r.handle)}`;
}

/** 0000:03:00.2 -> 0x0302: bus << 8 | device << 3 | function, the VF's identity on one PCI domain. */
export function vfBits(pci: string): number {
  const m = PCI_ADDRESS_RE.exec(pci);
  if (!m) throw new ValidationError(`pci: ${JSON.stringify(pci)} is not a PCI address like 0000:03:00.2`);
  const dev = parseInt(m[3]!, 16);
  if (dev > 31) throw new ValidationError(`pci: ${pci}: device number above 0x1f`);
  return (parseInt(m[2]!, 16) << 8) | (dev << 3) | parseInt(m[4]!, 10);
}

/** `ip -j` / `tc -j` output that must be an array. */
export function parseJsonArray(json: string, what: string): unknown[] {
  const doc = parseJsonOutput(json, what);
  if (!Array.isArray(doc)) throw new ValidationError(`${what}: expected a JSON array`);
  return doc;
}
