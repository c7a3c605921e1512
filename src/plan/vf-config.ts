// Programming the VF itself. On a real PF the MAC is set through the PF (the guest's VF driver
// reads it at probe). Nothing else: in switchdev mode mlx5 refuses spoofchk and trust
// (drivers/net/ethernet/mellanox/mlx5/core/esw/legacy.c mlx5_eswitch_set_vport_spoofchk and
// mlx5_eswitch_set_vport_trust: EOPNOTSUPP unless the eswitch is legacy), after rtnetlink has
// applied the MAC (net/core/rtnetlink.c do_setvfinfo applies IFLA_VF_MAC first). Anti-spoofing
// lives on the representor: the overlay's rules admit only the lease's MAC.
// The sim's VFs are veth ends with no PF behind them, so the MAC goes on the netdev directly. A
// sim VF without a host netdev is a libvirt host's tap: its MAC is set by QEMU from the XML.

import type { Step } from '../exec/step.js';
import { ip } from '../exec/tools.js';

export interface VfTarget {
  leaseKey: string;
  pf: string;
  vf: number;
  vfDev?: string;
  mac: string;
  mtu: number;
  /** The MAC before the lease (the sim VF netdev's, or the PF's admin MAC for it), restored on release. */
  origMac?: string;
}

const ZERO_MAC = '00:00:00:00:00:00';

export function renderVfConfig(backend: 'real' | 'sim', netns: string | undefined, t: VfTarget): Step[] {
  const owner = { kind: 'lease', key: t.leaseKey } as const;
  if (backend === 'real') {
    return [
      {
        kind: 'vf-config',
        device: `${t.pf} vf ${t.vf}`,
        owner,
        do: { argv: ip(netns, 'link', 'set', 'dev', t.pf, 'vf', String(t.vf), 'mac', t.mac) },
        // What the PF held before; zeros (no administrative MAC) only when that was unreadable.
        undo: { argv: ip(netns, 'link', 'set', 'dev', t.pf, 'vf', String(t.vf), 'mac', t.origMac ?? ZERO_MAC) },
      },
    ];
  }
  if (!t.vfDev) return [];
  return [
    {
      kind: 'vf-config',
      device: t.vfDev,
      owner,
      do: { argv: ip(netns, 'link', 'set', 'dev', t.vfDev, 'address', t.mac, 'mtu', String(t.mtu)) },
      undo: t.origMac ? { argv: ip(netns, 'link', 'set', 'dev', t.vfDev, 'address', t.origMac) } : undefined,
    },
  ];
}
