// Is the underlay neighbour towards a peer resolved? mlx5 builds a tc encap rule's header from
// the neighbour of the route's next hop, and without a valid one keeps the rule in its slow path
// until a neighbour update, while tc reports it in_hw all the same
// (drivers/net/ethernet/mellanox/mlx5/core/en/tc_tun.c mlx5e_tc_tun_create_header_ipv4:
// "the encap entry will be made valid on neigh update event and not used before that").

import type { Runner } from '../exec/runner.js';
import { ip } from '../exec/tools.js';
import { parseJsonOutput } from '../json-output.js';

/** NUD_VALID in include/net/neighbour.h: the states whose lladdr the kernel uses. */
const VALID = new Set(['PERMANENT', 'NOARP', 'REACHABLE', 'PROBE', 'STALE', 'DELAY']);

export interface PeerNeighbour {
  peer: string;
  /** The next hop: the peer itself on the underlay's subnet, else the route's gateway. */
  via: string;
  dev: string;
  /** The neighbour's states, empty when the kernel has no entry. */
  states: string[];
  valid: boolean;
}

/** `ip -j route get PEER` -> the device and next hop. */
export function parseRouteGet(json: string, peer: string): { dev: string; via: string } {
  const r = (parseJsonOutput(json, `ip route get ${peer}`) as { dev?: string; gateway?: string }[])[0];
  if (!r?.dev) throw new Error(`ip route get ${peer}: no route`);
  return { dev: r.dev, via: r.gateway ?? peer };
}

/** `ip -j neigh show to VIA dev DEV` -> its states (none: no entry). */
export function parseNeighStates(json: string): string[] {
  // Some iproute2 versions print nothing at all for no entry.
  if (json.trim() === '') return [];
  const n = (parseJsonOutput(json, 'ip neigh show') as { state?: string[] }[])[0];
  return n?.state ?? [];
}

export async function peerNeighbour(runner: Runner, netns: string | undefined, peer: string): Promise<PeerNeighbour> {
  const route = parseRouteGet((await runner.run({ argv: ip(netns, '-j', 'route', 'get', peer) })).stdout, peer);
  const states = parseNeighStates(
    (await runner.run({ argv: ip(netns, '-j', 'neigh', 'show', 'to', route.via, 'dev', route.dev) })).stdout,
  );
  return { peer, ...route, states, valid: states.some((s) => VALID.has(s)) };
}
