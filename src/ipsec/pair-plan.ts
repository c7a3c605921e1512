// The epochs of a static-key pair, as plans. Each host keeps its epoch's outbound and inbound SA
// and, installed ahead, the next epoch's inbound SA (the lookahead). A host may so move to the
// next epoch at any time without asking: its peer already receives it, notices the traffic on
// its lookahead and follows (promote). A host that lost its SAs (mlx5 drops the offloaded SAs of
// a netdev that goes down) moves to the next epoch (recover): the keys come fresh from the seed,
// so no nonce is used twice, and the peer follows as above.
//
// Deleting is never rolled back: the adds carry the plan (and the nonce guard), the deletes of
// what the move left behind run after them, tolerant of what is already gone.

import type { Command as StepCommand, Step } from '../plan/step.js';
import type { PeerSaState, SaFacts } from '../ledger/types.js';
import { epochKeys, MAX_EPOCH, nonceSpaceId, type PeerSeed } from './keys.js';
import { peerSas, policyAddStep, renderPeerSas, stateAddStep, type PeerSa, type PeerSaContext } from './render-static.js';
import { keyUsed, type GuardedPlan } from './nonce-guard.js';
import { policyDeleteArgv, saDeleteArgv, saGetArgv, type PolicyId } from './sa-kernel.js';
import { ValidationError } from '../errors.js';

export interface PairContext extends PeerSaContext {
  local: string;
  peer: string;
}

export interface PairMove {
  /** Adds, applied in order and rolled back on failure. */
  steps: Step[];
  /** Deletes of what the move replaces, run after the adds whatever they find. */
  cleanup: StepCommand[];
  /** The outbound SA's nonce-guard id, the step that installs it and its lookup. */
  guard: GuardedPlan['guard'];
  next: PeerSaState;
}

/** `ipsec up`: the epoch's SAs, the next epoch's inbound SA, the policies. */
export function planUp(ctx: PairContext, seed: PeerSeed, epoch: number): PairMove {
  const keys = epochKeys(seed, epoch, [ctx.local, ctx.peer]);
  const steps = renderPeerSas({ ...ctx, keys, lookahead: aheadKeys(ctx, seed, epoch) });
  const [out, inb] = peerSas({ ...ctx, keys });
  return { steps, cleanup: [], guard: guardOf(ctx, out, steps.at(-1)!), next: pairState(ctx, seed, epoch, out, inb) };
}

/** The peer sends with the next epoch (its traffic reached the lookahead): follow it. */
export function planPromote(ctx: PairContext, seed: PeerSeed, state: PeerSaState): PairMove {
  const epoch = nextOf(state);
  const [out, inb] = peerSas({ ...ctx, keys: epochKeys(seed, epoch, [ctx.local, ctx.peer]) });
  const ahead = lookaheadSa(ctx, seed, epoch);
  const steps = [...(ahead ? [stateAddStep(ctx, ahead)] : []), stateAddStep(ctx, out)];
  // The kernel sends with the newest outbound SA of the policy's reqid: the new one, from here.
  const cleanup = state.sas.map((sa) => ({ argv: saDeleteArgv(ctx.netns, sa) }));
  return { steps, cleanup, guard: guardOf(ctx, out, steps.at(-1)!), next: pairState(ctx, seed, epoch, out, inb) };
}

/**
 * This host lost some of its SAs or policies: move to the next epoch. `present` says which of the
 * recorded SAs the kernel still has: the lookahead, when still there, is kept (its replay window
 * with it); the old epoch's SAs are deleted, never reinstalled.
 */
export function planRecover(ctx: PairContext, seed: PeerSeed, state: PeerSaState, present: (sa: SaFacts) => boolean, lostPolicies: PolicyId[]): PairMove {
  const epoch = nextOf(state);
  const [out, inb] = peerSas({ ...ctx, keys: epochKeys(seed, epoch, [ctx.local, ctx.peer]) });
  const ahead = lookaheadSa(ctx, seed, epoch);
  const keepIn = state.lookahead !== undefined && state.lookahead.spi === inb.spi && present(state.lookahead);
  const outStep = stateAddStep(ctx, out);
  // The outbound SA last: a step failing before it leaves its key unused, to try again.
  const steps = [
    ...(keepIn ? [] : [stateAddStep(ctx, inb)]),
    ...(ahead ? [stateAddStep(ctx, ahead)] : []),
    ...[out, inb].filter((sa) => lostPolicies.some((p) => p.dir === sa.dir)).map((sa) => policyAddStep(ctx, sa)),
    outStep,
  ];
  const cleanup = state.sas.filter(present).map((sa) => ({ argv: saDeleteArgv(ctx.netns, sa) }));
  return { steps, cleanup, guard: guardOf(ctx, out, outStep), next: pairState(ctx, seed, epoch, out, inb) };
}

/** The nonce-guard id of an outbound SA: its key's fingerprint and its SPI. */
export function guardId(sa: PeerSa): string {
  return nonceSpaceId(sa.key, sa.spi);
}

function guardOf(ctx: PairContext, out: PeerSa, step: Step): PairMove['guard'] {
  return { id: guardId(out), step, probe: { argv: saGetArgv(ctx.netns, out) } };
}

/** The first epoch of this seed whose outbound key was never sent with: where `ipsec up` starts. */
export function firstUnusedEpoch(ctx: PairContext, seed: PeerSeed, used: readonly string[]): number {
  for (let epoch = 1; epoch < MAX_EPOCH; epoch++) {
    if (!keyUsed(used, guardId(peerSas({ ...ctx, keys: epochKeys(seed, epoch, [ctx.local, ctx.peer]) })[0]))) return epoch;
  }
  throw new ValidationError(`ipsec: every epoch of the key for ${ctx.peerName} was used: make a new key (vfwire ipsec keygen --peer ${ctx.peerName} --force)`);
}

/** What `ipsec down` runs, in the order of installing (it runs them in reverse). */
export function pairUndo(netns: string | undefined, state: Pick<PeerSaState, 'sas' | 'lookahead'>): StepCommand[] {
  const sas = [...state.sas, ...(state.lookahead ? [state.lookahead] : [])];
  return [...sas.map((sa) => ({ argv: saDeleteArgv(netns, sa) })), ...state.sas.map((sa) => ({ argv: policyDeleteArgv(netns, sa) }))];
}

function pairState(ctx: PairContext, seed: PeerSeed, epoch: number, out: PeerSa, inb: PeerSa): PeerSaState {
  const ahead = lookaheadSa(ctx, seed, epoch);
  const sas = [saFacts(out), saFacts(inb)];
  const lookahead = ahead && saFacts(ahead);
  return { key: seed.id, epoch, sas, ...(lookahead ? { lookahead } : {}), installedAt: new Date().toISOString(), undo: pairUndo(ctx.netns, { sas, lookahead }) };
}

function lookaheadSa(ctx: PairContext, seed: PeerSeed, epoch: number): PeerSa | undefined {
  const keys = aheadKeys(ctx, seed, epoch);
  return keys && peerSas({ ...ctx, keys })[1];
}

function aheadKeys(ctx: PairContext, seed: PeerSeed, epoch: number) {
  return epoch < MAX_EPOCH ? epochKeys(seed, epoch + 1, [ctx.local, ctx.peer]) : undefined;
}

function nextOf(state: PeerSaState): number {
  if (state.epoch >= MAX_EPOCH) throw new ValidationError(`ipsec: epoch ${state.epoch} is the last one of this key: make a new key (vfwire ipsec keygen --force) and rotate`);
  return state.epoch + 1;
}

/** What the ledger keeps of an SA: never its key. */
export function saFacts({ dir, src, dst, spi, reqid }: SaFacts): SaFacts {
  return { dir, src, dst, spi, reqid };
}
