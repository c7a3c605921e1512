// Wakes `ipsec watch` as soon as the kernel changes an SA or policy, instead of at its next
// round: an uplink that goes down flushes its offloaded SAs and policies at once
// (net/xfrm/xfrm_device.c xfrm_dev_down), and on a tc-flower host the rules must be down before
// the uplink is up again, when the NIC would send their VXLAN in clear (ipsec/tc-order.ts).
// `ip xfrm monitor` prints one block per event (XFRM_MSG_DELSA, _FLUSHSA, _DELPOLICY, ...);
// every line counts. vfwire's own changes wake it too: a round that finds nothing changes
// nothing, so the rounds settle.
// With failover pf-switch, `ip monitor link` wakes it too: a PF that loses its carrier flushes
// nothing, and the underlay must move at once (failover/pf-switch.ts).
// If a monitor cannot run, the watch still polls.

import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { ip } from '../exec/tools.js';

export interface XfrmEvents {
  /** Resolves on the first event after the call, or after `ms`. */
  next(ms: number): Promise<'event' | 'timeout'>;
  close(): void;
}

export function xfrmEvents(netns: string | undefined, opts: { links?: boolean } = {}): XfrmEvents {
  let wake: (() => void) | undefined;
  // An event while a round runs (no one waiting) makes the next wait return at once.
  let pending = false;
  const monitors = [ip(netns, 'xfrm', 'monitor'), ...(opts.links ? [ip(netns, 'monitor', 'link')] : [])];
  const children = new Set<ChildProcess>();
  for (const [file, ...args] of monitors) {
    const child = spawn(file!, args, { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, LC_ALL: 'C' } });
    children.add(child);
    child.stdout!.on('data', () => {
      if (wake) wake();
      else pending = true;
    });
    child.on('error', () => children.delete(child));
    child.on('exit', () => children.delete(child));
  }
  return {
    next(ms) {
      return new Promise((resolve) => {
        if (pending) {
          pending = false;
          resolve('event');
          return;
        }
        const timer = setTimeout(() => {
          wake = undefined;
          resolve('timeout');
        }, ms);
        wake = () => {
          clearTimeout(timer);
          wake = undefined;
          resolve('event');
        };
      });
    },
    close() {
      for (const c of children) c.kill();
    },
  };
}
