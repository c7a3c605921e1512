// Whether the traffic to each peer is encrypted right now, for `vfwire status`: read from the
// kernel (static keys: the ledger's SAs and policies present, with the SAs' packet counts) or from strongSwan
// (IKEv2: both CHILD_SAs installed), never from the ledger alone. A read that fails is told as
// such, not as "missing".

import type { Config, PeerConfig } from '../config/config.js';
import { underlayNetns } from '../config/config.js';
import { oneLine } from '../errors.js';
import type { Runner } from '../exec/runner.js';
import { activeUplink, strandedOn } from '../failover/pf-switch.js';
import type { IpsecState } from '../ledger/types.js';
import { checkIkeChildren } from './ikev2.js';
import { describeSa, missingPolicies, missingSas, saPackets } from './sa-kernel.js';

export type EncryptionState = 'encrypted' | 'missing' | 'down' | 'off' | 'unknown';

export interface PeerEncryption {
  peer: string;
  address: string;
  state: EncryptionState;
  /** Static keys: the pair's epoch. */
  epoch?: number;
  /** Static keys: packets through this epoch's outbound and inbound SA. */
  outPackets?: number;
  inPackets?: number;
  /** What is missing, or why the read failed. */
  detail?: string;
}

export async function peerEncryption(
  cfg: Config,
  runner: Runner,
  state: IpsecState | undefined,
  peer: PeerConfig,
): Promise<PeerEncryption> {
  const base = { peer: peer.name, address: peer.address };
  if (cfg.ipsec.mode === 'off') return { ...base, state: 'off' };
  try {
    if (cfg.ipsec.mode === 'ikev2') {
      const lost = await checkIkeChildren(cfg, runner, [peer], { strict: true });
      return lost.length
        ? { ...base, state: 'missing', detail: `CHILD_SAs ${lost.join(', ')}` }
        : { ...base, state: 'encrypted' };
    }
    const pair = state?.peers[peer.name];
    if (!pair) return { ...base, state: 'down', detail: 'no SAs installed (vfwire ipsec up)' };
    const netns = underlayNetns(cfg);
    // pf-switch: offloaded to a port the underlay left, present and useless (watch.ts re-homes them).
    const uplink = await activeUplink(cfg, runner);
    const stranded = strandedOn(cfg, pair, uplink);
    if (stranded)
      return {
        ...base,
        state: 'missing',
        epoch: pair.epoch,
        detail: `SAs offloaded to ${stranded}, the underlay is on ${uplink}`,
      };
    // Without its policy the traffic is dropped, not sent in clear (the admission's reqid rule): not encrypted either.
    const lost = [
      ...(await missingSas(runner, netns, pair.sas)).map((sa) => `SA ${describeSa(sa)}`),
      ...(await missingPolicies(runner, netns, pair.sas)).map((p) => `policy ${p.dir}`),
    ];
    if (lost.length) return { ...base, state: 'missing', epoch: pair.epoch, detail: lost.join(', ') };
    const count = (dir: 'out' | 'in') => {
      const sa = pair.sas.find((s) => s.dir === dir);
      return sa ? saPackets(runner, netns, sa) : Promise.resolve(undefined);
    };
    const [outPackets, inPackets] = [await count('out'), await count('in')];
    return { ...base, state: 'encrypted', epoch: pair.epoch, outPackets, inPackets };
  } catch (err) {
    return { ...base, state: 'unknown', detail: oneLine(err) };
  }
}

/** One line: `sim-b encrypted (epoch 2, out 120 / in 118 packets)`. */
export function describeEncryption(e: PeerEncryption): string {
  const facts = [
    e.epoch !== undefined ? `epoch ${e.epoch}` : undefined,
    e.outPackets !== undefined || e.inPackets !== undefined
      ? `out ${e.outPackets ?? '?'} / in ${e.inPackets ?? '?'} packets`
      : undefined,
    e.detail,
  ].filter((x) => x !== undefined);
  return `${e.peer} ${e.state}${facts.length ? ` (${facts.join(', ')})` : ''}`;
}
