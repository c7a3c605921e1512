// Ethernet MAC addresses for VFs: checking what a user wrote, and deriving a stable one when
// the metadata gives none.

import { createHash } from 'node:crypto';
import { UUID_RE } from '../identifiers.js';

const MAC_RE = /^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$/;

/** Lower-case colon form of six colon-separated hex octets; undefined for anything else. */
export function normalizeMac(text: string): string | undefined {
  return MAC_RE.test(text) ? text.toLowerCase() : undefined;
}

function firstOctet(mac: string): number {
  return Number.parseInt(mac.slice(0, 2), 16);
}

/** Unicast: the I/G bit (lowest bit of the first octet) is clear. Broadcast is multicast. */
export function isUnicastMac(mac: string): boolean {
  return (firstOctet(mac) & 0x01) === 0;
}

/** Locally administered: the U/L bit (0x02 of the first octet) is set. */
export function isLocallyAdministeredMac(mac: string): boolean {
  return (firstOctet(mac) & 0x02) !== 0;
}

/**
 * Why `mac` cannot be given to a VF, or undefined if it can. Expects the normalized form
 * (see normalizeMac). The reasons read after the field name: `mac: must not be multicast`.
 */
export function macProblem(mac: string): string | undefined {
  if (mac === '00:00:00:00:00:00') return 'must not be all-zero';
  if (mac === 'ff:ff:ff:ff:ff:ff') return 'must not be the broadcast address';
  if (!isUnicastMac(mac)) return 'must not be multicast (low bit of the first octet set)';
  return undefined;
}

/**
 * The MAC a VM's interface gets when its metadata names none: sha256 of the domain UUID and
 * the interface index, first six bytes, made locally administered (0x02 set) and unicast
 * (0x01 clear). Stable across restarts and hosts, so the guest keeps its MAC (and its DHCP
 * lease) wherever it runs. The UUID is compared case-insensitively.
 */
export function deriveMac(uuid: string, index: number): string {
  if (!UUID_RE.test(uuid)) throw new RangeError(`deriveMac: not a UUID: ${JSON.stringify(uuid.slice(0, 40))}`);
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`deriveMac: bad index ${index}`);
  const digest = createHash('sha256').update(`vfwire-mac:${uuid.toLowerCase()}:${index}`).digest();
  const octets = Array.from(digest.subarray(0, 6));
  octets[0] = ((octets[0] ?? 0) | 0x02) & 0xfe;
  return octets.map((b) => b.toString(16).padStart(2, '0')).join(':');
}
