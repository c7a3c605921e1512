// Programming the VF itself. On a real PF the eswitch enforces the MAC: set it through the PF
// with spoof checking on and trust off (a trusted VF could change its MAC or go promiscuous).
// The sim's VFs are veth ends with no PF behind them, so the MAC goes on the netdev directly;
// spoofchk/trust exist only in the real plan, which is golden-tested. A sim VF without a host
// netdev is a libvirt host's tap: its MAC is set by QEMU from the attached interface's XML.

import type { Step } from './step.js';
import { ip } from '../exec/tools.js';

export interface VfTarget {
  leaseKey: string;
  pf: string;
  vf: number;
  vfDev?: string;
  mac: string;
  mtu: number;
  /** The sim VF netdev's MAC before the lease, restored on release. */
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
        do: { argv: ip(netns, 'link', 'set', 'dev', t.pf, 'vf', String(t.vf), 'mac', t.mac, 'spoofchk', 'on', 'trust', 'off') },
        // Back to an unassigned VF: no administrative MAC, and the safe defaults.
        undo: { argv: ip(netns, 'link', 'set', 'dev', t.pf, 'vf', String(t.vf), 'mac', ZERO_MAC, 'spoofchk', 'on', 'trust', 'off') },
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
