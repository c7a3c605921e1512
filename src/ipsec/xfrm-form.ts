// Which `ip xfrm` form this host accepts, from the kernel and iproute2 versions and the offload
// mode the config asks for. Pure: the versions are probed by host/versions.ts.
//
// The forms differ in two places:
// - the SA direction (XFRMA_SA_DIR): iproute2 >= 6.11 sends it whenever a state command names
//   `dir`, also inside `offload ... dir` (iproute2 ip/xfrm_state.c xfrm_state_modify, commit
//   7f7726a7 "xfrm: add SA direction attribute"); kernels >= 6.10 then require replay-window 0
//   on an output SA (net/xfrm/xfrm_user.c verify_replay, "Replay window should be 0 for output
//   SA", a4a87fa4e96c "xfrm: Add Direction to the SA in or out"). Older kernels ignore the
//   attribute (xfrm_user_rcv_msg: nlmsg_parse_deprecated skips a type above XFRMA_MAX).
// - ESN with window 0: iproute2 < 6.11 refuses it outright ("esn flag set without
//   replay-window", ip/xfrm_state.c), and kernels < 6.10 too (net/xfrm/xfrm_replay.c
//   xfrm_init_replay: "ESN replay window must be > 0"); a4a87fa4e96c allows it on an output SA.
// So: both new -> output SA with `dir out` and window 0; otherwise the lab notes' form, a window on
// both SAs and no SA direction (the kernel never checks a window on an output SA there).

import { ValidationError } from '../errors.js';
import { atLeast, type Version } from '../host/versions.js';

export type OffloadMode = 'packet' | 'crypto' | 'none';

export interface XfrmForm {
  offload: OffloadMode;
  /** Name the SA direction (XFRMA_SA_DIR) on every state. */
  saDir: boolean;
  /** replay-window of output SAs (inbound ones always have INBOUND_REPLAY_WINDOW). */
  outReplayWindow: number;
}

export const INBOUND_REPLAY_WINDOW = 64;

const SA_DIR_KERNEL: Version = [6, 10];
const SA_DIR_IPROUTE2: Version = [6, 11];
// Packet offload: kernel 6.2 (net/xfrm/xfrm_device.c xfrm_dev_state_add, XFRM_OFFLOAD_PACKET from
// d14f28b8c1de "xfrm: add new packet offload flag"); iproute2 6.2 (a6e740ff "xfrm: add packet
// offload mode to xfrm state", 3422c62d for policies).
const PACKET_KERNEL: Version = [6, 2];
const PACKET_IPROUTE2: Version = [6, 2];
// Packet offload with the eswitch in switchdev: mlx5 since 6.6 (c6c2bf5db4ea and 1762f132d542
// "Support IPsec packet offload for TX/RX in switchdev mode"); NVIDIA's "IPsec Packet Offload"
// page names kernel 6.6 for switchdev too.
const PACKET_SWITCHDEV_KERNEL: Version = [6, 6];

export interface XfrmHost {
  kernel: Version;
  iproute2: Version;
  /** The uplink's eswitch is in switchdev mode (a real ConnectX host). */
  switchdev: boolean;
}

/** The form for this host, or a one-line refusal naming the limit and the fix. */
export function xfrmForm(host: XfrmHost, offload: OffloadMode): XfrmForm {
  requireOffloadKernel(host.kernel, host.switchdev, offload);
  if (offload === 'packet' && !atLeast(host.iproute2, PACKET_IPROUTE2))
    throw refusal(
      `iproute2 ${v(host.iproute2)} cannot say 'offload packet' (needs ${v(PACKET_IPROUTE2)})`,
      'apt-get install -t bookworm-backports iproute2',
    );
  const saDir = atLeast(host.kernel, SA_DIR_KERNEL) && atLeast(host.iproute2, SA_DIR_IPROUTE2);
  return { offload, saDir, outReplayWindow: saDir ? 0 : INBOUND_REPLAY_WINDOW };
}

/** What the kernel must have for the mode, whoever programs the SAs (ip, or strongSwan). */
export function requireOffloadKernel(kernel: Version, switchdev: boolean, offload: OffloadMode): void {
  if (offload !== 'packet') return;
  const fix = 'boot a newer kernel (bookworm-backports), or set ipsec.offload: crypto or none';
  if (!atLeast(kernel, PACKET_KERNEL))
    throw refusal(`kernel ${v(kernel)} has no IPsec packet offload (needs ${v(PACKET_KERNEL)})`, fix);
  if (switchdev && !atLeast(kernel, PACKET_SWITCHDEV_KERNEL))
    throw refusal(
      `kernel ${v(kernel)}: mlx5 IPsec packet offload in switchdev mode needs ${v(PACKET_SWITCHDEV_KERNEL)}`,
      fix,
    );
}

const v = (x: Version) => x.join('.');

function refusal(limit: string, fix: string): ValidationError {
  return new ValidationError(`ipsec.offload: ${limit}: ${fix}`);
}
