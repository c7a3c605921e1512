// The VNI overlay on the Linux kernel path: per VNI a VXLAN device (no learning; peers by static
// head-end replication entries) enslaved to a bridge that also holds the representors of the
// VMs on that VNI. Renders steps; runs nothing.

import { type Config, vxlanSocketNetns } from '../config/config.js';
import type { Step } from '../exec/step.js';
import { bridge, ip } from '../exec/tools.js';
import { renderAdmission } from './admission.js';
import { bridgeName, VXLAN_PORT, vxlanName } from './names.js';
import { bridgeChecks } from './bridge-checks.js';
import type { JoinResult, Leave, Overlay, VniView } from './overlay.js';
import { maxGuestMtu } from './mtu.js';
import { renderRepGuard } from './rep-guard.js';
import { planGuardLeftovers, readGuardElements } from './rep-guard-leftovers.js';

export interface OverlayHost {
  /** Where representors, bridges and VXLAN devices live (undefined: this netns). */
  netns?: string;
  /** Where the underlay lives, when elsewhere (the sim's libvirt host). */
  underlayNetns?: string;
  /**
   * The netdev VXLAN sends through; undefined: wherever the route to the peer goes (failover
   * pf-switch, whose underlay moves between PFs: a device bound to one would keep sending there).
   */
  underlayInterface?: string;
  underlayAddress: string;
}

/** Steps that create a VNI's overlay; run on its first lease. */
export function renderVniCreate(host: OverlayHost, vni: number, mtu: number, peers: string[]): Step[] {
  const ns = host.netns;
  const vx = vxlanName(vni);
  const br = bridgeName(vni);
  const owner = { kind: 'vni', vni } as const;
  const vxlanArgs = [
    'link',
    'add',
    vx,
    'mtu',
    String(mtu),
    'type',
    'vxlan',
    'id',
    String(vni),
    'dstport',
    String(VXLAN_PORT),
    'local',
    host.underlayAddress,
    ...(host.underlayInterface ? ['dev', host.underlayInterface] : []),
    'nolearning',
  ];
  const steps: Step[] = [];
  if (host.underlayNetns && host.underlayNetns !== ns) {
    // A VXLAN device keeps its UDP socket in the netns it was created in, wherever it moves:
    // so it is made beside the underlay and then moved to the bridge (PID 1's netns when the
    // bridge is in the root namespace). The sim's libvirt host uses this; real hosts do not.
    const u = host.underlayNetns;
    steps.push(
      {
        kind: 'vxlan-create',
        device: vx,
        owner,
        do: { argv: ip(u, ...vxlanArgs) },
        undo: { argv: ip(u, 'link', 'del', vx) },
      },
      {
        kind: 'vxlan-move',
        device: vx,
        owner,
        do: { argv: ip(u, 'link', 'set', 'dev', vx, 'netns', ns ?? '1') },
        undo: { argv: ip(ns, 'link', 'del', vx) },
      },
    );
  } else {
    steps.push({
      kind: 'vxlan-create',
      device: vx,
      owner,
      do: { argv: ip(ns, ...vxlanArgs) },
      undo: { argv: ip(ns, 'link', 'del', vx) },
    });
  }
  steps.push(
    {
      kind: 'bridge-create',
      device: br,
      owner,
      do: { argv: ip(ns, 'link', 'add', br, 'mtu', String(mtu), 'type', 'bridge') },
      undo: { argv: ip(ns, 'link', 'del', br) },
    },
    {
      kind: 'vxlan-master',
      device: vx,
      owner,
      do: { argv: ip(ns, 'link', 'set', 'dev', vx, 'master', br, 'up') },
    },
  );
  steps.push(...renderPeerChanges(host, vni, peers, []));
  steps.push({ kind: 'bridge-up', device: br, owner, do: { argv: ip(ns, 'link', 'set', 'dev', br, 'up') } });
  return steps;
}

/**
 * Head-end replication entries: an all-zero MAC entry per peer floods broadcast and unknown
 * unicast to it. Also brings a live VNI in line with a config whose peers changed since.
 */
export function renderPeerChanges(host: OverlayHost, vni: number, add: string[], remove: string[]): Step[] {
  const vx = vxlanName(vni);
  const owner = { kind: 'vni', vni } as const;
  const fdb = (peer: string) => ['00:00:00:00:00:00', 'dev', vx, 'dst', peer];
  return [
    ...add.map((peer): Step => ({
      kind: 'vxlan-peer',
      device: `${vx} ${peer}`,
      owner,
      do: { argv: bridge(host.netns, 'fdb', 'append', ...fdb(peer)) },
      undo: { argv: bridge(host.netns, 'fdb', 'del', ...fdb(peer)) },
    })),
    ...remove.map((peer): Step => ({
      kind: 'vxlan-peer-remove',
      device: `${vx} ${peer}`,
      owner,
      do: { argv: bridge(host.netns, 'fdb', 'del', ...fdb(peer)) },
    })),
  ];
}

/** Join a representor to its VNI's bridge. */
export function renderMemberJoin(host: OverlayHost, leaseKey: string, rep: string, vni: number, mtu: number): Step {
  return {
    kind: 'rep-join',
    device: rep,
    owner: { kind: 'lease', key: leaseKey },
    do: { argv: ip(host.netns, 'link', 'set', 'dev', rep, 'mtu', String(mtu), 'master', bridgeName(vni), 'up') },
    undo: { argv: ip(host.netns, 'link', 'set', 'dev', rep, 'nomaster', 'down') },
  };
}

/** A member's leave is all in its recorded undo (out of the bridge, guard removed), the VNI's in the VNI's. */
export const bridgeLeave: Leave = () => [];

/**
 * The bridge overlay behind the Overlay interface. A VNI is created by its first member and its
 * peers brought up to date by the next; admission comes first (no VXLAN device exists before it,
 * and a peer that leaves the config is refused before it loses its FDB entry); the representor's
 * guard right after it, long before the representor joins the bridge.
 */

export function bridgeOverlay(cfg: Config): Overlay {
  // failover pf-switch moves the underlay between PFs: a VXLAN device bound to one would keep sending there.
  const host: OverlayHost = {
    netns: cfg.netns,
    underlayNetns: cfg.underlay.netns,
    underlayInterface: cfg.failover?.mode === 'pf-switch' ? undefined : cfg.underlay.interface,
    underlayAddress: cfg.underlay.address,
  };
  const overlayMtu = maxGuestMtu(cfg.underlay.mtu, cfg.ipsec.mode !== 'off');
  const vniSteps = (view: VniView): Omit<JoinResult, 'steps'> & { steps: Step[] } => {
    if (view.plannedHere) return { steps: [] };
    const admission = (withUndo: boolean) =>
      renderAdmission(vxlanSocketNetns(cfg), view.vni, view.admission, { withUndo });
    if (!view.live)
      return {
        steps: [admission(true), ...renderVniCreate(host, view.vni, overlayMtu, view.peers)],
        newVni: { peers: view.peers },
      };
    const add = view.peers.filter((a) => !view.live!.peers.includes(a));
    const remove = view.live.peers.filter((a) => !view.peers.includes(a));
    if (add.length === 0 && remove.length === 0) return { steps: [] };
    return {
      steps: [admission(false), ...renderPeerChanges(host, view.vni, add, remove)],
      peerUpdate: { peers: view.peers },
    };
  };
  return {
    kind: 'bridge',
    sasForEveryStart: false,
    // The bridge a representor joins lives while the ledger records a member; the guard's
    // elements are the lease's own (rep-guard.ts), and no other command touches its VF.
    ownStepsUnlocked: true,
    // Its devices are per VNI, made and removed with their members.
    hostSteps: () => Promise.resolve([]),
    leave: bridgeLeave,
    check: (runner, ledger) => bridgeChecks(cfg.netns, runner, ledger),
    // Its bridges, VXLAN devices and bridge ports are netdevs, found by name by gc itself; the
    // guard's elements are not.
    async leftovers(runner, ledger) {
      const found = await readGuardElements(runner, cfg.netns);
      return found ? planGuardLeftovers(cfg.netns, found, ledger) : [];
    },
    join(view, member, vfSteps) {
      const vni = vniSteps(view);
      const guard = renderRepGuard(cfg.netns, member.leaseKey, member.rep, member.mac);
      return {
        ...vni,
        // vni.steps start with the admission, when there are any: the guard beside it makes both
        // one nft transaction (exec/step-groups.ts).
        steps: [
          ...vni.steps.slice(0, 1),
          guard,
          ...vni.steps.slice(1),
          ...vfSteps,
          renderMemberJoin(host, member.leaseKey, member.rep, view.vni, member.mtu),
        ],
      };
    },
  };
}
