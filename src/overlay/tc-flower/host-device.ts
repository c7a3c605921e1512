// tc-flower's host state: the one external-mode VXLAN device with its ingress qdisc, made by
// `vfwire host setup` and checked by every start.
//
//
// Why one shared external-mode VXLAN device (`vfwvxlan`, `external` = collect_metadata) and
// not one per VNI: with tunnel_key the VNI and the addresses travel with each packet, so one
// device serves every VNI, as OVS's vxlan_sys_4789 does for mlx5 offload. There can be only
// one: this kernel refuses a second external device on UDP 4789 ("A VXLAN device with the
// specified VNI already exists"), and a per-VNI device on 4789 beside it cannot come up
// ("Address already in use"), so the bridge and tc-flower overlays exclude each other per
// netns. mlx5 decapsulates only on ports registered by a VXLAN device that is up in the PF's
// netns (mlx5_vxlan_lookup_port in en/tc_tun_vxlan.c), and the decap rules hang off this
// device's ingress, offloaded through the indirect block callbacks. Being host-wide, the device
// is host state made by `vfwire host setup` (like the IPsec SAs), not refcounted by VNI: a

import { ValidationError } from '../../errors.js';
import { ip, tc } from '../../exec/tools.js';
import type { Step } from '../../exec/step.js';
import { VXLAN_PORT } from '../names.js';
import { parseJsonArray, TC_UNRECORDED_OWNER, TC_VXLAN_DEVICE, vxlanDev, type TcFlowerHost } from './model.js';

/** The shared device as `vfwire host setup` reads it; undefined fields were not read. */
export interface TcHostState {
  /** From `ip -j -d link show vfwvxlan` (parseTcHostLink); null: no such device. */
  vxlan?: { external: boolean; port: number; mtu: number; up: boolean } | null;
  /** From `tc -j qdisc show dev vfwvxlan` (hasIngressQdisc). */
  ingressQdisc?: boolean;
}

/** `vfwire host setup` with `overlay: tc-flower`, unconditionally: the external VXLAN device, up, with an ingress qdisc. */
export function renderTcHost(host: TcFlowerHost, mtu: number): Step[] {
  return planTcHost(host, mtu, {});
}

/** Only what differs from `current`, each undo restoring what was read; a second run plans nothing. */
export function planTcHost(host: TcFlowerHost, mtu: number, current: TcHostState): Step[] {
  const ns = host.netns;
  const vx = vxlanDev(host);
  const cur = current.vxlan;
  const steps: Step[] = [];
  const step = (kind: string, argv: string[], undo: string[]) =>
    steps.push({ kind, device: vx, owner: TC_UNRECORDED_OWNER, do: { argv }, undo: { argv: undo } });
  if (!cur) {
    const create = ['link', 'add', vx, 'mtu', String(mtu), 'type', 'vxlan', 'dstport', String(VXLAN_PORT), 'external'];
    step('tcf-vxlan-create', ip(ns, ...create), ip(ns, 'link', 'del', vx));
  } else if (!cur.external || cur.port !== VXLAN_PORT) {
    throw new ValidationError(
      `host setup: ${vx} exists but is not an external VXLAN device on UDP ${VXLAN_PORT} (external ${cur.external}, port ${cur.port}); remove it (ip link del ${vx}) and run host setup again`,
    );
  } else if (cur.mtu !== mtu) {
    const setMtu = (n: number) => ip(ns, 'link', 'set', 'dev', vx, 'mtu', String(n));
    step('tcf-vxlan-mtu', setMtu(mtu), setMtu(cur.mtu));
  }
  if (!cur?.up) step('tcf-vxlan-up', ip(ns, 'link', 'set', 'dev', vx, 'up'), ip(ns, 'link', 'set', 'dev', vx, 'down'));
  // A new device has no qdisc, whatever was read about the old one.
  if (!cur || !current.ingressQdisc)
    step('tcf-qdisc', tc(ns, 'qdisc', 'add', 'dev', vx, 'ingress'), tc(ns, 'qdisc', 'del', 'dev', vx, 'ingress'));
  return steps;
}

/** `ip -j -d link show vfwvxlan` (iproute2 ip/iplink_vxlan.c: info_data.external, info_data.port). */
export function parseTcHostLink(json: string, dev = TC_VXLAN_DEVICE): NonNullable<TcHostState['vxlan']> {
  const link = parseJsonArray(json, `ip link show ${dev}`)[0] as
    | {
        mtu?: number;
        flags?: string[];
        linkinfo?: { info_kind?: string; info_data?: { external?: boolean; port?: number } };
      }
    | undefined;
  if (!link) throw new ValidationError(`ip link show ${dev}: no such link in the output`);
  if (link.linkinfo?.info_kind !== 'vxlan')
    throw new ValidationError(
      `ip link show ${dev}: not a VXLAN device (${link.linkinfo?.info_kind ?? 'no linkinfo; was -d given?'})`,
    );
  const d = link.linkinfo.info_data ?? {};
  return {
    external: d.external === true,
    port: d.port ?? 0,
    mtu: link.mtu ?? 0,
    up: link.flags?.includes('UP') ?? false,
  };
}

/** `tc -j qdisc show dev D`: is there an ingress (or clsact) qdisc? */
export function hasIngressQdisc(json: string, dev = 'device'): boolean {
  return parseJsonArray(json, `tc qdisc show dev ${dev}`).some(
    (q) => (q as { kind?: string }).kind === 'ingress' || (q as { kind?: string }).kind === 'clsact',
  );
}

/** A cheap check for a VM's start: the shared device exists (fail closed with a clear step name). */
export function renderTcHostCheck(host: TcFlowerHost, leaseKey: string): Step {
  const vx = vxlanDev(host);
  return {
    kind: 'tcf-vxlan-check',
    device: vx,
    owner: { kind: 'lease', key: leaseKey },
    do: { argv: ip(host.netns, 'link', 'show', 'dev', vx) },
  };
}
