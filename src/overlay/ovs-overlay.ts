// The OVS overlay behind the Overlay interface: one bridge per host, made by host setup with its
// one flow-based VXLAN port (ovs/host-bridge.ts); a VF's representor joins as a port, and its
// VNI's OpenFlow rules are rewritten whole for the new membership (ovs/flows.ts). Admission as for
// the other overlays, in ovs-vswitchd's netns, where the datapath's VXLAN socket is: the rules
// also match each peer's tunnel source.

import { existsSync } from 'node:fs';
import { type Config, vxlanSocketNetns } from '../config/config.js';
import type { Step } from '../exec/step.js';
import type { LedgerData } from '../ledger/types.js';
import { renderAdmission } from './admission.js';
import type { Leave, Overlay, VniView } from './overlay.js';
import { ovsChecks } from './ovs/checks.js';
import { ovsDaemonsUp, planOvsStart } from './ovs/daemons.js';
import type { OvsVni } from './ovs/flows.js';
import { planOvsBridge, readOvsBridge } from './ovs/host-bridge.js';
import { ovsLeftovers } from './ovs/leftovers.js';
import { ovsVniOf, planOvsJoin, planOvsLeave } from './ovs/membership.js';
import { vsctl } from './ovs/model.js';
import { ovsHostOf, ovsOffloadOf } from './ovs/settings.js';

/** The VNI's rules rewritten without the leaving members, from the ledger; their ports go in their recorded undo. */
export const ovsLeave: Leave = (ledger: LedgerData, vni, leaving) => {
  const state = ledger.vnis[String(vni)];
  if (!state?.ovs) return [];
  return planOvsLeave(state.ovs, ovsVniOf(ledger, vni), leaving, ledger);
};

// What the VNI's rules are before this join: the ledger's members and, for peers, what this plan
// or the ledger last programmed.
function rulesBefore(view: VniView): OvsVni {
  const members = view.members.map((m) => ({ port: m.rep, mac: m.mac }));
  const peers = view.plannedHere ? view.peers : (view.live?.peers ?? []);
  return { vni: view.vni, members, peers };
}

export function ovsOverlay(cfg: Config): Overlay {
  const host = ovsHostOf(cfg);
  return {
    kind: 'ovs',
    sasForEveryStart: false,
    // A join ends with the VNI's rules rewritten whole for its members: one join at a time.
    ownStepsUnlocked: false,
    async hostSteps(runner) {
      const up = await ovsDaemonsUp(host, runner);
      // sd_booted(3): systemd runs PID 1 when this directory exists.
      const start = await planOvsStart(
        host,
        { dbFile: cfg.ovs.dbFile, logDir: cfg.logDir },
        up,
        existsSync('/run/systemd/system'),
      );
      // Daemons about to start cannot be read: the bridge steps are then all of them, idempotent.
      if (start.length) return [...start, ...planOvsBridge(host, ovsOffloadOf(cfg))];
      return planOvsBridge(host, ovsOffloadOf(cfg), await readOvsBridge(host, runner));
    },
    leave: ovsLeave,
    check: (runner, ledger) => ovsChecks(cfg, runner, ledger),
    leftovers: (runner, ledger) => ovsLeftovers(host, runner, ledger),
    join(view, member, vfSteps, firstInPlan) {
      const steps: Step[] = [];
      const admission = (withUndo: boolean) =>
        renderAdmission(vxlanSocketNetns(cfg), view.vni, view.admission, { withUndo });
      const creates = !view.live && !view.plannedHere;
      const peersChanged =
        !!view.live &&
        !view.plannedHere &&
        (view.peers.length !== view.live.peers.length || view.peers.some((p) => !view.live!.peers.includes(p)));
      if (creates) steps.push(admission(true));
      else if (peersChanged) steps.push(admission(false));
      // A start fails closed, with a step that says why, on a host whose bridge host setup never made.
      if (firstInPlan)
        steps.push({
          kind: 'ovs-bridge-check',
          device: host.bridge,
          owner: { kind: 'lease', key: member.leaseKey },
          do: { argv: vsctl(host, 'br-exists', host.bridge) },
        });
      steps.push(...vfSteps, ...planOvsJoin(host, rulesBefore(view), view.peers, member));
      return {
        steps,
        ...(creates ? { newVni: { peers: view.peers, ovs: { bridge: host.bridge, runDir: host.runDir } } } : {}),
        ...(peersChanged ? { peerUpdate: { peers: view.peers } } : {}),
      };
    },
  };
}
