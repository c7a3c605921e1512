// The lab notes' static IPsec between two hosts, made safe: per peer two ESP transport SAs with
// AES-GCM-128 and ESN, offloaded to the uplink in packet mode, and two policies that require
// them for the VXLAN traffic (UDP 4789) between the underlay addresses. The peer renders the
// mirror image: same SPIs and keys, directions swapped.
//
// Departures from the notes, each forced by the kernel or by safety:
// - outbound SAs have replay-window 0 (current kernels refuse a window on an output SA);
// - states are added through `ip -batch -` so the key is on stdin, not in an argv that every
//   local user can read in /proc;
// - selectors carry `proto udp dport 4789`, so the SAs cover the overlay and nothing else.

import { ip } from '../exec/tools.js';
import { VXLAN_PORT } from '../overlay/names.js';
import type { Step } from '../plan/step.js';
import type { PeerKeys } from './keys.js';
import { saDeleteArgv, saGetArgv, saIdArgs } from './sa-kernel.js';
import { deriveSaIds, hex32, orderPair, type Direction } from './sa-ids.js';

const AEAD = 'rfc4106(gcm(aes))';
const ICV_BITS = '128';
const INBOUND_REPLAY_WINDOW = '64';

export interface StaticPeerInput {
  peerName: string;
  local: string;
  peer: string;
  /** The netdev whose NIC does the ESP work (the PF, or the bond with failover). */
  uplink: string;
  netns?: string;
  keys: PeerKeys;
  priority: number;
}

export interface PeerSa {
  dir: 'out' | 'in';
  src: string;
  dst: string;
  spi: number;
  reqid: number;
  key: Buffer;
}

/** The two SAs of the pair as this host sees them. */
export function peerSas(input: Pick<StaticPeerInput, 'local' | 'peer' | 'keys'>): [PeerSa, PeerSa] {
  const [low] = orderPair(input.local, input.peer);
  const outDir: Direction = input.local === low ? 'low-to-high' : 'high-to-low';
  const inDir: Direction = outDir === 'low-to-high' ? 'high-to-low' : 'low-to-high';
  const keyOf = (d: Direction) => (d === 'low-to-high' ? input.keys.lowToHigh : input.keys.highToLow);
  return [
    { dir: 'out', src: input.local, dst: input.peer, ...deriveSaIds(input.local, input.peer, input.keys.epoch, outDir), key: keyOf(outDir) },
    { dir: 'in', src: input.peer, dst: input.local, ...deriveSaIds(input.local, input.peer, input.keys.epoch, inDir), key: keyOf(inDir) },
  ];
}

export function renderPeerSas(input: StaticPeerInput): Step[] {
  const owner = { kind: 'peer', name: input.peerName } as const;
  const ns = input.netns;
  const steps: Step[] = [];
  for (const sa of peerSas(input)) {
    const state = [
      'xfrm', 'state', 'add', ...saIdArgs(sa), 'reqid', hex32(sa.reqid), 'mode', 'transport',
      'aead', AEAD, `0x${sa.key.toString('hex')}`, ICV_BITS,
      'offload', 'packet', 'dev', input.uplink, 'dir', sa.dir,
      'sel', 'src', sa.src, 'dst', sa.dst, 'proto', 'udp', 'dport', String(VXLAN_PORT),
      'flag', 'esn', 'replay-window', sa.dir === 'out' ? '0' : INBOUND_REPLAY_WINDOW,
    ];
    steps.push({
      kind: `xfrm-state-${sa.dir}`,
      device: `${sa.src}->${sa.dst} spi ${hex32(sa.spi)}`,
      owner,
      do: { argv: ip(ns, '-batch', '-'), stdin: state.join(' ') + '\n' },
      undo: { argv: saDeleteArgv(ns, sa) },
    });
  }
  for (const sa of peerSas(input)) {
    const sel = ['src', `${sa.src}/32`, 'dst', `${sa.dst}/32`, 'proto', 'udp', 'dport', String(VXLAN_PORT)];
    steps.push({
      kind: `xfrm-policy-${sa.dir}`,
      device: `${sa.src}->${sa.dst}`,
      owner,
      do: {
        argv: ip(ns, 'xfrm', 'policy', 'add', ...sel, 'offload', 'packet', 'dev', input.uplink, 'dir', sa.dir,
          'tmpl', 'src', sa.src, 'dst', sa.dst, 'proto', 'esp', 'reqid', hex32(sa.reqid), 'mode', 'transport', 'priority', String(input.priority)),
      },
      undo: { argv: ip(ns, 'xfrm', 'policy', 'delete', ...sel, 'dir', sa.dir) },
    });
  }
  return steps;
}

/** Fail closed at start: the SAs this host installed to a peer are still in the kernel. */
export function renderPeerCheck(peerName: string, netns: string | undefined, sas: { src: string; dst: string; spi: number }[], leaseKey: string): Step[] {
  return sas.map((sa) => ({
    kind: 'ipsec-check',
    device: `${peerName} ${sa.src}->${sa.dst} spi ${hex32(sa.spi)}`,
    owner: { kind: 'lease', key: leaseKey },
    do: { argv: saGetArgv(netns, sa) },
  }));
}
