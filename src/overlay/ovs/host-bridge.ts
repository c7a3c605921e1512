// The OVS overlay's host state: vfwire's bridge (fail_mode secure: only vfwire's rules forward,
// flows.ts), its one flow-based VXLAN port, and on a real host OVS's tc offload. Read in one
// ovs-vsctl call, planned as only what differs, each undo restoring what was read.

import { ValidationError } from '../../errors.js';
import type { Runner } from '../../exec/runner.js';
import type { Step } from '../../exec/step.js';
import { VXLAN_PORT } from '../names.js';
import { OVS_TUNNEL_PORT, OVS_UNRECORDED_OWNER, vsctl, type OvsHost } from './model.js';

export interface OvsBridgeState {
  /** Open_vSwitch other_config. */
  otherConfig: Record<string, string>;
  /** null: no such bridge. */
  bridge: { failMode: string; datapathType: string } | null;
  /** null: no such interface; `bridge` the one it is on (null: none). */
  tunnel: { type: string; options: Record<string, string>; bridge: string | null } | null;
}

/** real: OVS offloads its datapath flows to tc with this policy (vswitchd/vswitch.xml other_config:tc-policy). */
export interface OvsOffload {
  tcPolicy: 'skip_sw' | 'skip_hw' | 'none';
}

/** The tunnel port's options: flow-based peer and VNI, vfwire's source address, the IANA port. */
export function tunnelOptions(host: OvsHost): Record<string, string> {
  return { dst_port: String(VXLAN_PORT), key: 'flow', local_ip: host.underlayAddress, remote_ip: 'flow' };
}

type OvsdbValue = string | number | boolean | ['map', [string, string][]] | ['set', unknown[]] | ['uuid', string];

const map = (v: OvsdbValue | undefined): Record<string, string> =>
  Array.isArray(v) && v[0] === 'map' ? Object.fromEntries(v[1]) : {};
// An optional column is an empty set when unset.
const str = (v: OvsdbValue | undefined): string => (typeof v === 'string' ? v : '');

/** `ovs-vsctl --format=json --data=json` of the three reads readOvsBridge makes, one document per line. */
export function parseOvsBridgeState(stdout: string): Omit<OvsBridgeState, 'tunnel'> & {
  tunnel: Omit<NonNullable<OvsBridgeState['tunnel']>, 'bridge'> | null;
} {
  const docs = stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { data: OvsdbValue[][] }).data);
  if (docs.length !== 3) throw new ValidationError(`ovs-vsctl: expected 3 tables in its output, got ${docs.length}`);
  const [ovs, br, iface] = docs as [OvsdbValue[][], OvsdbValue[][], OvsdbValue[][]];
  const b = br[0];
  const t = iface[0];
  return {
    otherConfig: map(ovs[0]?.[0]),
    bridge: b ? { failMode: str(b[0]), datapathType: str(b[1]) } : null,
    tunnel: t ? { type: str(t[0]), options: map(t[1]) } : null,
  };
}

export async function readOvsBridge(host: OvsHost, runner: Runner): Promise<OvsBridgeState> {
  const { stdout } = await runner.run({
    argv: vsctl(
      host,
      '--format=json',
      '--data=json',
      '--',
      '--columns=other_config',
      'list',
      'Open_vSwitch',
      '--',
      '--columns=fail_mode,datapath_type',
      'find',
      'Bridge',
      `name=${host.bridge}`,
      '--',
      '--columns=type,options',
      'find',
      'Interface',
      `name=${OVS_TUNNEL_PORT}`,
    ),
  });
  const state = parseOvsBridgeState(stdout);
  if (!state.tunnel) return { ...state, tunnel: null };
  // ovsdb deletes an Interface no Port references (vswitch.ovsschema: Interface is not isRoot;
  // RFC 7047 3.2), so the tunnel interface is on some bridge: a failure here is never "none".
  const on = (await runner.run({ argv: vsctl(host, 'iface-to-br', OVS_TUNNEL_PORT) })).stdout.trim();
  return { ...state, tunnel: { ...state.tunnel, bridge: on } };
}

/** Host setup's OVS steps: only what differs from `cur`; undefined `cur`: nothing could be read (daemons just started), all of it, idempotently. */
export function planOvsBridge(host: OvsHost, offload: OvsOffload | undefined, cur?: OvsBridgeState): Step[] {
  const steps: Step[] = [];
  const br = host.bridge;
  const step = (kind: string, device: string, argv: string[], undo?: string[]) =>
    steps.push({ kind, device, owner: OVS_UNRECORDED_OWNER, do: { argv }, ...(undo ? { undo: { argv: undo } } : {}) });
  if (offload) {
    const want = offload.tcPolicy;
    const on = cur?.otherConfig['hw-offload'] === 'true';
    const policy = cur?.otherConfig['tc-policy'] ?? 'none';
    // hw-offload is read once, when it first turns true, and tc-policy with it (lib/netdev-offload.c
    // netdev_set_flow_api_enabled): set both in one transaction; a later policy needs a restart.
    if (!on)
      step(
        'ovs-hw-offload',
        'Open_vSwitch',
        vsctl(host, 'set', 'Open_vSwitch', '.', `other_config:tc-policy=${want}`, 'other_config:hw-offload=true'),
        vsctl(host, 'remove', 'Open_vSwitch', '.', 'other_config', 'hw-offload', 'tc-policy'),
      );
    else if (policy !== want)
      throw new ValidationError(
        `host setup: OVS offloads with tc-policy ${policy}, the config says ${want}; OVS reads it only when hw-offload turns on (lib/netdev-offload.c netdev_set_flow_api_enabled): ovs-vsctl set Open_vSwitch . other_config:tc-policy=${want}, restart openvswitch-switch, then host setup again`,
      );
  }
  if (cur?.bridge === null || !cur) {
    step(
      'ovs-bridge',
      br,
      vsctl(host, '--may-exist', 'add-br', br, '--', 'set', 'Bridge', br, 'fail_mode=secure'),
      vsctl(host, '--if-exists', 'del-br', br),
    );
  } else {
    if (!['', 'system'].includes(cur.bridge.datapathType))
      throw new ValidationError(
        `host setup: bridge ${br} has datapath_type ${cur.bridge.datapathType}; vfwire's needs the kernel datapath (system), whose flows OVS offloads to tc: ovs-vsctl del-br ${br}, then host setup again`,
      );
    if (cur.bridge.failMode !== 'secure')
      step(
        'ovs-fail-mode',
        br,
        vsctl(host, 'set-fail-mode', br, 'secure'),
        cur.bridge.failMode ? vsctl(host, 'set-fail-mode', br, cur.bridge.failMode) : vsctl(host, 'del-fail-mode', br),
      );
  }
  const want = tunnelOptions(host);
  const opts = Object.entries(want).map(([k, v]) => `options:${k}=${v}`);
  const t = cur?.tunnel;
  if (t && t.bridge !== null && t.bridge !== br)
    throw new ValidationError(
      `host setup: interface ${OVS_TUNNEL_PORT} is on bridge ${t.bridge}, not ${br}; remove it (ovs-vsctl del-port ${t.bridge} ${OVS_TUNNEL_PORT}) and run host setup again`,
    );
  if (!cur || !t || t.bridge === null) {
    step(
      'ovs-tunnel',
      OVS_TUNNEL_PORT,
      vsctl(
        host,
        '--may-exist',
        'add-port',
        br,
        OVS_TUNNEL_PORT,
        '--',
        'set',
        'Interface',
        OVS_TUNNEL_PORT,
        'type=vxlan',
        ...opts,
      ),
      vsctl(host, '--if-exists', 'del-port', br, OVS_TUNNEL_PORT),
    );
  } else if (t.type !== 'vxlan' || JSON.stringify(sorted(t.options)) !== JSON.stringify(sorted(want))) {
    const back = Object.entries(t.options).map(([k, v]) => `options:${k}=${v}`);
    const set = (type: string, o: string[]) =>
      vsctl(
        host,
        'clear',
        'Interface',
        OVS_TUNNEL_PORT,
        'options',
        '--',
        'set',
        'Interface',
        OVS_TUNNEL_PORT,
        `type=${type}`,
        ...o,
      );
    step('ovs-tunnel-options', OVS_TUNNEL_PORT, set('vxlan', opts), set(t.type || 'system', back));
  }
  return steps;
}

const sorted = (o: Record<string, string>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
