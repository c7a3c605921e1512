// The peers a VNI's traffic is replicated to: those whose `vnis` list names it, or lists none.

import type { Config, PeerConfig } from '../config/config.js';

export function peersOf(cfg: Config, vni: number): PeerConfig[] {
  return cfg.peers.filter((p) => p.vnis === undefined || p.vnis.includes(vni));
}
