// What a VM asks vfwire for, per interface, once its metadata has been validated.

import type { HotplugSlots } from './hotplug-slots.js';

export const VFWIRE_NS = 'https://vfwire.dev/xmlns/1.0';
export const VNI_MIN = 1;
export const VNI_MAX = 16_777_215;

export type EncryptMode = 'required' | 'off';

export interface InterfaceSpec {
  /** Position among the VM's vfwire interfaces; with the domain UUID it keys the lease. */
  index: number;
  vni: number;
  /** Lower-case colon form; derived from the UUID when the metadata gives none. */
  mac: string;
  /** Absent: the config's default VF MTU (bounded by the overlay). */
  mtu?: number;
  encrypt: EncryptMode;
  /** Lease only from this PF. */
  pf?: string;
}

export interface DomainRequest {
  name: string;
  uuid: string;
  /** null: the domain carries no vfwire metadata at all. */
  interfaces: InterfaceSpec[] | null;
  /** Its free hot-plug slots, for a tagged q35 or pc domain (hotplug-slots.ts). */
  slots?: HotplugSlots;
}
