// `vfwire ipsec rotate --peer P [--commit | --finish]`: move a static-key pair to its next key
// epoch without a gap (make-before-break). The new key file (vfwire ipsec keygen --force, copied
// to the peer) is already on both hosts; each step runs on both hosts before the next:
//
//   rotate           add the new epoch's inbound SA beside the old one: both can be received
//   rotate --commit  add the new outbound SA and delete the old one: the kernel sends with the
//                    newest outbound SA of the reqid, which the policies name, so they stay put
//   rotate --finish  delete the old inbound SA once the peer sends with the new key
//
// New SAs pass the same nonce-reuse guard as `ipsec up`.

import type { Config, PeerConfig } from '../config/config.js';
import { ValidationError } from '../errors.js';
import { applySteps } from '../exec/apply.js';
import { withLedger } from '../ledger/store.js';
import type { PeerSaState, SaFacts } from '../ledger/types.js';
import type { Step } from '../plan/step.js';
import { keyFilePath, nonceSpaceId, readKeyFile } from './keys.js';
import { saDeleteArgv } from './sa-kernel.js';
import { peerSas, renderPeerSas } from './render-static.js';
import { hex32 } from './sa-ids.js';
import type { IpsecDeps, PeerOutcome } from './static-sas.js';

export type RotateStep = 'start' | 'commit' | 'finish';

export async function ipsecRotate({ cfg, runner, log }: IpsecDeps, opts: { peer: string; step: RotateStep; dryRun?: boolean }): Promise<PeerOutcome> {
  if (cfg.ipsec.mode !== 'static') throw new ValidationError(`ipsec rotate: only for ipsec.mode static (${cfg.ipsec.mode}: strongSwan rekeys by itself)`);
  const peer = cfg.peers.find((p) => p.name === opts.peer);
  if (!peer) throw new ValidationError(`--peer: no peer "${opts.peer}" in ${cfg.path}`);
  return withLedger(cfg.stateDir, async (txn) => {
    const state = txn.data.ipsec?.peers[peer.name];
    if (!state) throw new ValidationError(`ipsec rotate: peer ${peer.name} is not up (vfwire ipsec up)`);
    const keys = await readKeyFile(keyFilePath(cfg.ipsec.keyDir, peer.name));
    const { steps, next } = planRotation(cfg, peer, state, keys, opts.step, txn.data.ipsec!.used);
    if (opts.dryRun) return { peer: peer.name, result: 'planned', steps };
    const ids = opts.step === 'start' ? newIds(peer, cfg, keys) : [];
    // As in `ipsec up`: the new pairs are remembered before their SAs exist, and forgotten
    // again only when the one state add of this step certainly failed.
    txn.data.ipsec!.used.push(...ids);
    await txn.save();
    try {
      await applySteps(steps, runner);
    } catch (err) {
      txn.data.ipsec!.used = txn.data.ipsec!.used.filter((id) => !ids.includes(id));
      await txn.save();
      throw err;
    }
    txn.data.ipsec!.peers[peer.name] = next;
    await txn.save();
    log.info('ipsec rotate', { peer: peer.name, step: opts.step, from: state.epoch, to: next.rotating?.epoch ?? next.epoch });
    const said = { start: 'rotating: both keys are received', commit: 'rotating: sending with the new key', finish: `rotated to epoch ${next.epoch}` } as const;
    return { peer: peer.name, result: said[opts.step] };
  }, { timeoutMs: cfg.lockTimeoutMs });
}

/** The steps of one rotation step and the peer's state after it. Pure but for the key bytes. */
function planRotation(cfg: Config, peer: PeerConfig, state: PeerSaState, keys: Awaited<ReturnType<typeof readKeyFile>>, step: RotateStep, used: string[]): { steps: Step[]; next: PeerSaState } {
  const netns = cfg.underlay.netns ?? cfg.netns;
  const input = { peerName: peer.name, local: cfg.underlay.address, peer: peer.address, uplink: cfg.underlay.interface, netns, keys, priority: cfg.ipsec.priority };
  const facts = peerSas(input).map(({ dir, src, dst, spi, reqid }): SaFacts => ({ dir, src, dst, spi, reqid }));
  const add = (dir: 'out' | 'in') => renderPeerSas(input).find((s) => s.kind === `xfrm-state-${dir}`)!;
  const del = (sa: SaFacts): Step => ({ kind: `xfrm-state-delete-${sa.dir}`, device: `${sa.src}->${sa.dst} spi ${hex32(sa.spi)}`, owner: { kind: 'peer', name: peer.name }, do: { argv: saDeleteArgv(netns, sa) } });
  const old = (dir: 'out' | 'in') => state.sas.find((s) => s.dir === dir)!;
  const phase = state.rotating?.phase;

  if (step === 'start') {
    if (state.rotating) throw new ValidationError(`ipsec rotate: peer ${peer.name} is already rotating to epoch ${state.rotating.epoch} (next: --${phase === 'receiving' ? 'commit' : 'finish'})`);
    if (keys.epoch <= state.epoch) throw new ValidationError(`ipsec rotate: the key file of ${peer.name} has epoch ${keys.epoch}, the SAs ${state.epoch}: make the next key first (vfwire ipsec keygen --peer ${peer.name} --force) and copy it to the peer`);
    if (newIds(peer, cfg, keys).some((id) => used.includes(id))) throw new ValidationError(`ipsec rotate: the key of epoch ${keys.epoch} for ${peer.name} was already used with these SPIs; make a new one`);
    return { steps: [add('in')], next: { ...state, rotating: { epoch: keys.epoch, phase: 'receiving', sas: facts.filter((s) => s.dir === 'in') } } };
  }
  if (!state.rotating || state.rotating.epoch !== keys.epoch) throw new ValidationError(`ipsec rotate: no rotation of ${peer.name} to the key file's epoch ${keys.epoch} under way (start with: vfwire ipsec rotate --peer ${peer.name})`);
  if (step === 'commit') {
    if (phase !== 'receiving') throw new ValidationError(`ipsec rotate: ${peer.name} already sends with epoch ${keys.epoch} (next: --finish)`);
    return { steps: [add('out'), del(old('out'))], next: { ...state, rotating: { epoch: keys.epoch, phase: 'sending', sas: facts } } };
  }
  if (phase !== 'sending') throw new ValidationError(`ipsec rotate: ${peer.name} does not send with epoch ${keys.epoch} yet (run --commit on both hosts first)`);
  // The policies stay; the state deletes of `ipsec down` now name the new SPIs.
  const policyUndo = state.undo.filter((c) => c.argv.includes('policy'));
  const stateUndo = facts.map((sa) => ({ argv: saDeleteArgv(netns, sa) }));
  return { steps: [del(old('in'))], next: { epoch: keys.epoch, sas: facts, installedAt: new Date().toISOString(), undo: [...stateUndo, ...policyUndo] } };
}

function newIds(peer: PeerConfig, cfg: Config, keys: Awaited<ReturnType<typeof readKeyFile>>): string[] {
  return peerSas({ local: cfg.underlay.address, peer: peer.address, keys }).map((sa) => nonceSpaceId(sa.key, sa.spi));
}
