// The OVS overlay's vocabulary: where vfwire's bridge and its daemons are, and the argv of the
// OVS tools against them. The tools reach the daemons over unix sockets in the run directory, so
// they run in any netns; only ovs-vswitchd itself must run beside the representors (its kernel
// datapath is per netns). Every tool is given its socket: an OVS_RUNDIR in the environment
// would not survive into the ledger's undo commands.

import type { StepOwner } from '../../exec/step.js';
import type { OvsVniHost } from '../../ledger/types.js';

export interface OvsHost extends OvsVniHost {
  /** Where ovs-vswitchd and the representors are (undefined: this netns). */
  netns?: string;
  /** The underlay address VXLAN leaves from. */
  underlayAddress: string;
}

/**
 * The one VXLAN port of the bridge: flow-based (remote_ip=flow, key=flow), so each VNI's rules
 * set the VNI and the peer per packet and match both on the way in (vswitchd/vswitch.xml,
 * Interface options:remote_ip "flow"). One port serves every VNI and peer, as OVS's one
 * vxlan_sys_4789 datapath device does.
 */
export const OVS_TUNNEL_PORT = 'vfwtun';

/** Rewrites of a VNI's rules follow its membership: run, never recorded (the leave recomputes them). */
export const OVS_UNRECORDED_OWNER: StepOwner = { kind: 'host' };

/** ovs-vsctl against the host's database; it waits (10 s at most) until ovs-vswitchd applied the change. */
export function vsctl(host: OvsVniHost, ...args: string[]): string[] {
  return ['ovs-vsctl', `--db=unix:${host.runDir}/db.sock`, '--timeout=10', ...args];
}

/** ovs-ofctl against the bridge's management socket, in OpenFlow 1.4 (for bundles); options before the verb. */
export function ofctl(host: OvsVniHost, options: string[], verb: string, ...args: string[]): string[] {
  return ['ovs-ofctl', '-O', 'OpenFlow14', ...options, verb, mgmt(host), ...args];
}

/** The bridge's OpenFlow management socket (ovs-vswitchd names it BRIDGE.mgmt in its run directory). */
export function mgmt(host: OvsVniHost): string {
  return `unix:${host.runDir}/${host.bridge}.mgmt`;
}
