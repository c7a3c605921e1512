// MTU math in one place. A guest frame crosses the underlay inside
//   outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) = 50 bytes of VXLAN,
// and, with IPsec in transport mode and AES-GCM-128, ESP header (8) + IV (8) + ICV (16) +
// trailer (2) + up to 3 bytes of padding to a 4-byte boundary.

const VXLAN_OVERHEAD = 50;
const ESP_GCM128_TRANSPORT_OVERHEAD = 8 + 8 + 16 + 2 + 3;

/** A VF's MTU when its metadata names none: the config's vf_mtu, bounded by what the overlay carries. */
export function defaultGuestMtu(vfMtu: number, underlayMtu: number, encrypted: boolean): number {
  return Math.min(vfMtu, maxGuestMtu(underlayMtu, encrypted));
}

/** The largest MTU a guest interface can use without fragmenting on the underlay. */
export function maxGuestMtu(underlayMtu: number, encrypted: boolean): number {
  return underlayMtu - VXLAN_OVERHEAD - (encrypted ? ESP_GCM128_TRANSPORT_OVERHEAD : 0);
}
