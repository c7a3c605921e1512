// Names of the kernel objects vfwire owns. A fixed prefix lets `gc` recognise its own leftovers;
// VNIs are at most 8 digits, so the names stay within IFNAMSIZ (15).

export const VXLAN_PORT = 4789;

export function vxlanName(vni: number): string {
  return `vfwvx${vni}`;
}

export function bridgeName(vni: number): string {
  return `vfwbr${vni}`;
}
