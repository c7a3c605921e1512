// What `overlay: ovs` cannot do, refused at config load in one line naming the limit and the fix.

import { ValidationError } from '../errors.js';
import type { RawConfig } from './schema.js';

export function checkOvsLimits(raw: RawConfig, path: string): void {
  if (raw.overlay !== 'ovs') return;
  const refuse = (why: string) => new ValidationError(`config ${path}: overlay ovs ${why}`);
  // The kernel datapath's VXLAN socket lives in ovs-vswitchd's netns, the representors' (the
  // datapath is per netns: net/openvswitch/datapath.c ovs_dp_cmd_new creates it in the caller's).
  if (raw.underlay.netns !== undefined && raw.underlay.netns !== raw.netns)
    throw refuse(
      `with underlay.netns ${raw.underlay.netns}: OVS sends VXLAN from ovs-vswitchd's netns, where the representors are (${raw.netns ?? 'the host'}); put the underlay there, or use overlay: bridge`,
    );
  if (raw.failover)
    throw refuse(
      `with failover ${raw.failover.mode}: an OVS bridge over the VF LAG bond is not proven in vfwire's lab yet; use overlay: bridge`,
    );
  // With hw-offload OVS puts each datapath flow into the eswitch when its first packet arrives,
  // and mlx5 refuses the first SA while any tc flow is offloaded (366e46242b8e,
  // eswitch_offloads.c mlx5_eswitch_block_mode) and points encap back at the plain uplink when
  // the last SA goes (d1569537a837): vfwire cannot order OVS's offloads around its SAs.
  if (raw.backend === 'real' && raw.ipsec.mode !== 'off' && raw.tc_policy !== 'skip_hw')
    throw refuse(
      `with ipsec.mode ${raw.ipsec.mode} and tc_policy ${raw.tc_policy}: OVS offloads flows on their first packet, which mlx5 refuses beside a first SA and sends in clear after the last; use tc_policy: skip_hw (OVS's flows in the kernel, through xfrm), or overlay: tc-flower with ipsec.mode static`,
    );
}
