// The tc-flower overlay behind the Overlay interface: the VF's rules, and the VNI's replication
// lists rewritten to include it. A first member also records the VNI (without undo: its rules go
// with their members). Admission as for the bridge, for what the kernel decapsulates (software tc,
// and whatever the eswitch passes up); the decap rules themselves also match each peer's enc_src_ip.

import { type Config, vxlanSocketNetns } from '../config/config.js';
import type { Step } from '../exec/step.js';
import { renderAdmission } from './admission.js';
import type { Leave, Overlay } from './overlay.js';
import { tcFlowerChecks } from './tc-flower/checks.js';
import { tcVniStateOf } from './tc-flower/members.js';
import { ifPresent } from '../exec/if-present.js';
import { ip, tc } from '../exec/tools.js';
import { maxGuestMtu } from './mtu.js';
import { hasIngressQdisc, parseTcHostLink, planTcHost, renderTcHostCheck } from './tc-flower/host-device.js';
import { planTcJoin, planTcLeave } from './tc-flower/membership.js';
import { TC_VXLAN_DEVICE, type TcFlowerHost } from './tc-flower/model.js';
import { planTcLeftovers, readTcFound } from './tc-flower/leftovers.js';

/**
 * The VNI's replication lists rewritten without the leaving members (recomputed from the
 * ledger, never replayed); their own rules go with their qdiscs in the leases' recorded undo.
 */
export const tcFlowerLeave: Leave = (ledger, vni, leaving) => {
  const state = ledger.vnis[String(vni)];
  // Rules taken down for IPsec stay down: a rewrite would put encap rules back without SAs.
  if (!state?.tc || ledger.ipsec?.tcRulesDown) return [];
  return planTcLeave(state.tc, tcVniStateOf(ledger, vni), leaving);
};

export function tcFlowerOverlay(cfg: Config): Overlay {
  const policy = cfg.tcPolicy === 'skip_sw' ? {} : { policy: cfg.tcPolicy };
  // Rules the NIC never holds (skip_hw) meet no eswitch IPsec rule.
  const host: TcFlowerHost = {
    netns: cfg.netns,
    underlayAddress: cfg.underlay.address,
    ipsecTx: cfg.ipsec.mode !== 'off' && cfg.tcPolicy !== 'skip_hw',
    ...policy,
  };
  return {
    kind: 'tc-flower',
    // mlx5 takes no first SA beside tc rules, and sends their VXLAN in clear once the last SA is gone (ipsec/tc-order.ts).
    sasForEveryStart: cfg.ipsec.mode !== 'off',
    // A lease's rules are among those ipsec up/down take down and up under the lock (tc-order.ts).
    ownStepsUnlocked: false,
    // The one external VXLAN device and its ingress qdisc are host state.
    async hostSteps(runner) {
      const link = await ifPresent(
        runner.run({ argv: ip(cfg.netns, '-j', '-d', 'link', 'show', 'dev', TC_VXLAN_DEVICE) }),
      );
      const qdisc = link
        ? await ifPresent(runner.run({ argv: tc(cfg.netns, '-j', 'qdisc', 'show', 'dev', TC_VXLAN_DEVICE) }))
        : undefined;
      const state = {
        vxlan: link ? parseTcHostLink(link.stdout) : null,
        ingressQdisc: qdisc ? hasIngressQdisc(qdisc.stdout, TC_VXLAN_DEVICE) : false,
      };
      return planTcHost(
        { netns: cfg.netns, underlayAddress: cfg.underlay.address },
        maxGuestMtu(cfg.underlay.mtu, cfg.ipsec.mode !== 'off'),
        state,
      );
    },
    leave: tcFlowerLeave,
    check: (runner, ledger) => tcFlowerChecks(cfg, runner, ledger),
    leftovers: async (runner, ledger, poolReps) =>
      planTcLeftovers(host, await readTcFound(host, runner, ledger, poolReps), ledger),
    join(view, member, vfSteps, firstInPlan) {
      const steps: Step[] = [...vfSteps];
      if (firstInPlan) steps.push(renderTcHostCheck(host, member.leaseKey));
      const creates = !view.live && !view.plannedHere;
      if (creates) steps.push(renderAdmission(vxlanSocketNetns(cfg), view.vni, view.admission, { withUndo: true }));
      steps.push(
        ...planTcJoin(host, { vni: view.vni, peers: view.live?.peers ?? view.peers, members: view.members }, [member]),
      );
      return {
        steps,
        ...(creates
          ? {
              newVni: { peers: view.peers, tc: { netns: cfg.netns, underlayAddress: cfg.underlay.address, ...policy } },
            }
          : {}),
      };
    },
  };
}
