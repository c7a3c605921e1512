// The tc-flower overlay behind the Overlay interface: the VF's rules, and the VNI's replication
// lists rewritten to include it. A first member also records the VNI (without undo: its rules go
// with their members). Admission as for the bridge, for what the kernel decapsulates (software tc,
// and whatever the eswitch passes up); the decap rules themselves also match each peer's enc_src_ip.

import { type Config, vxlanSocketNetns } from '../config/config.js';
import type { Step } from '../exec/step.js';
import { renderAdmission } from './admission.js';
import type { Overlay } from './overlay.js';
import { planTcJoin, renderTcHostCheck, type TcFlowerHost } from './tc-flower.js';

export function tcFlowerOverlay(cfg: Config): Overlay {
  const policy = cfg.tcPolicy === 'skip_sw' ? {} : { policy: cfg.tcPolicy };
  // Rules the NIC never holds (skip_hw) meet no eswitch IPsec rule.
  const host: TcFlowerHost = { netns: cfg.netns, underlayAddress: cfg.underlay.address, ipsecTx: cfg.ipsec.mode !== 'off' && cfg.tcPolicy !== 'skip_hw', ...policy };
  return {
    kind: 'tc-flower',
    // mlx5 takes no first SA beside tc rules, and sends their VXLAN in clear once the last SA is gone (ipsec/tc-order.ts).
    sasForEveryStart: cfg.ipsec.mode !== 'off',
    join(view, member, vfSteps, firstInPlan) {
      const steps: Step[] = [...vfSteps];
      if (firstInPlan) steps.push(renderTcHostCheck(host, member.leaseKey));
      const creates = !view.live && !view.plannedHere;
      if (creates) steps.push(renderAdmission(vxlanSocketNetns(cfg), view.vni, view.admission, { withUndo: true }));
      steps.push(...planTcJoin(host, { vni: view.vni, peers: view.live?.peers ?? view.peers, members: view.members }, [member]));
      return { steps, ...(creates ? { newVni: { peers: view.peers, tc: { netns: cfg.netns, underlayAddress: cfg.underlay.address, ...policy } } } : {}) };
    },
  };
}
