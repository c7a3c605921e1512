// SPIs and reqids both hosts of a pair compute alike without talking: from the two underlay
// addresses (ordered), the key (its fingerprint), the key epoch and the direction. A new epoch
// or a new key gives new SPIs, so the SAs of two epochs can live side by side. The reqid does not change with the epoch: the
// policies' templates name it, so SAs of the old and the new epoch both satisfy them while a
// rotation moves from one to the other (make-before-break), and the kernel sends with the
// newest outbound SA.

import { createHash } from 'node:crypto';

export type Direction = 'low-to-high' | 'high-to-low';

export interface SaIds {
  spi: number;
  reqid: number;
}

/** Orders two IPv4 addresses numerically: [low, high]. */
export function orderPair(a: string, b: string): [string, string] {
  const n = (ip: string) => ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  return n(a) < n(b) ? [a, b] : [b, a];
}

export function deriveSaIds(a: string, b: string, keyId: string, epoch: number, dir: Direction): SaIds {
  const [low, high] = orderPair(a, b);
  const h = createHash('sha256').update(`vfwire-sa:${low}:${high}:${keyId}:${epoch}:${dir}`).digest();
  const r = createHash('sha256').update(`vfwire-reqid:${low}:${high}:${dir}`).digest();
  // SPIs 0-255 are reserved (RFC 4303); reqid 0 means "any" to the kernel.
  return { spi: 0x100 + (h.readUInt32BE(0) % (0xffffffff - 0x100)), reqid: 1 + (r.readUInt32BE(0) % 0xfffffffe) };
}

export function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** The reqid of the SA that carries `peer`'s traffic to `local` (any key, any epoch). */
export function inboundReqid(local: string, peer: string): number {
  const [low] = orderPair(local, peer);
  return deriveSaIds(local, peer, '', 0, peer === low ? 'low-to-high' : 'high-to-low').reqid;
}

/** The reqid of the SA that carries `local`'s traffic to `peer`. */
export function outboundReqid(local: string, peer: string): number {
  return inboundReqid(peer, local);
}
