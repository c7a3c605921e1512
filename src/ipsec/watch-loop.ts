// `ipsec watch` as a service: a round (watch.ts) every interval, or sooner when the kernel says
// an SA, a policy or (with pf-switch) a link changed (xfrm-events.ts). One failed round (a lock
// held too long, say) is logged and the next one tries again: the service must not end.

import { underlayNetns } from '../config/config.js';
import { pfSwitch } from '../failover/pf-switch.js';
import { sleep } from '../wait.js';
import type { IpsecDeps } from './deps.js';
import { watchOnce, type WatchFinding } from './watch.js';
import { xfrmEvents } from './xfrm-events.js';

/** After an xfrm event, the others of its burst (a flush deletes every SA and policy in turn). */
const EVENT_SETTLE_MS = 100;

export function describeFinding(f: WatchFinding): string {
  return `${f.peer}: ${f.lost.length ? `lost ${f.lost.join(', ')}: ` : ''}${f.action}`;
}

/** One round; true when everything is in place (maybe after a recovery). A failed round throws. */
export async function watchRound({ cfg, runner, log }: IpsecDeps, print: (line: string) => void): Promise<boolean> {
  const findings = await watchOnce(cfg, runner, log);
  for (const f of findings) print(describeFinding(f));
  return findings.every((f) => f.recovered);
}

/** Rounds until the process is stopped. */
export async function watchForever(deps: IpsecDeps, intervalMs: number, print: (line: string) => void): Promise<never> {
  const { cfg, log } = deps;
  const events = xfrmEvents(underlayNetns(cfg), { links: pfSwitch(cfg) });
  try {
    for (;;) {
      await watchRound(deps, print).catch((err: Error) =>
        log.error('ipsec watch: round failed', { error: err.message }),
      );
      if ((await events.next(intervalMs)) === 'event') await sleep(EVENT_SETTLE_MS);
    }
  } finally {
    events.close();
  }
}
