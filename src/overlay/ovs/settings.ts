// The OVS overlay's settings from the config: where its bridge and daemons are, and whether OVS
// offloads (real hosts: to tc, with the config's policy; the sim: the kernel datapath only).

import type { Config } from '../../config/config.js';
import type { OvsOffload } from './host-bridge.js';
import type { OvsHost } from './model.js';

export function ovsHostOf(cfg: Config): OvsHost {
  return { bridge: cfg.ovs.bridge, runDir: cfg.ovs.runDir, netns: cfg.netns, underlayAddress: cfg.underlay.address };
}

export function ovsOffloadOf(cfg: Config): OvsOffload | undefined {
  return cfg.backend === 'real' ? { tcPolicy: cfg.tcPolicy } : undefined;
}
