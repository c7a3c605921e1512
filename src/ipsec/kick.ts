// After a move to a new epoch, one datagram to the peer's VXLAN port tells it so: the policy
// sends it through the new outbound SA, the peer sees a packet on its lookahead SA and follows
// (pair-plan.ts). It carries a VXLAN header with VNI 0, which vfwire never gives a tenant, so the
// peer's VXLAN devices drop it. A child process sends it, from inside the underlay's netns when
// there is one. A kick that fails is only logged: the watch kicks again next round.

import type { Runner } from '../exec/runner.js';
import type { Logger } from '../log.js';
import type { PairContext } from './pair-plan.js';
import { entryPoint } from '../program-files.js';

const SENDER = entryPoint('ipsec/kick-main.js');

export function kickArgv(netns: string | undefined, local: string, peer: string): string[] {
  const send = [process.execPath, SENDER, local, peer];
  return netns ? ['ip', 'netns', 'exec', netns, ...send] : send;
}

export async function kickPeer(runner: Runner, log: Logger, ctx: PairContext): Promise<void> {
  await runner
    .run({ argv: kickArgv(ctx.netns, ctx.local, ctx.peer) })
    .catch((err: Error) => log.warn('ipsec: kick failed', { peer: ctx.peerName, error: err.message }));
}
