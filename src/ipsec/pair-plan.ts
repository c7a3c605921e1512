// The epochs of a static-key pair, as plans. Each host keeps its epoch's outbound and inbound SA
// and, installed ahead, the inbound SAs of the next LOOKAHEAD epochs. A host may so move on
// without asking: its peer already receives the new epoch, notices traffic on a lookahead SA and
// follows to the newest such epoch (promote). A host that lost its SAs (mlx5 drops the offloaded
// SAs of a netdev that goes down) moves to the next epoch (recover): the keys come fresh from the
// seed, so no nonce is used twice, and the peer follows as above. A host moves at most LOOKAHEAD
// epochs past the last one it heard the peer on (a second loss before the peer followed is
// fine); beyond that its peer could not receive it, so the move is refused, loudly.
//
// Deleting is never rolled back: the adds carry the plan (and the nonce guard), the deletes of
// what the move left behind run after them, tolerant of what is already gone.

import { type Config, type PeerConfig, underlayNetns } from '../config/config.js';
import type { Command as StepCommand, Step } from '../exec/step.js';
import type { PeerSaState, SaFacts } from '../ledger/types.js';
import { epochKeys, MAX_EPOCH, nonceSpaceId, type PeerSeed } from './keys.js';
import {
  peerSas,
  policyAddStep,
  renderPeerSas,
  stateAddStep,
  type PeerSa,
  type PeerSaContext,
} from './render-static.js';
import { keyUsed, type GuardedPlan } from './nonce-guard.js';
import { policyDeleteArgv, saDeleteArgv, saGetArgv, type PolicyId } from './sa-kernel.js';
import { ValidationError } from '../errors.js';
import type { XfrmForm } from './xfrm-form.js';

/** Epochs received ahead: one more SA in the NIC per peer buys one more loss before the peer followed. */
const LOOKAHEAD = 2;

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

/** `ipsec up`: the epoch's SAs, the lookahead, the policies. The peer's epoch is not known yet. */
export function planUp(ctx: PairContext, seed: PeerSeed, epoch: number): PairMove {
  const steps = renderPeerSas({
    ...ctx,
    keys: epochKeys(seed, epoch, [ctx.local, ctx.peer]),
    lookahead: aheadEpochs(epoch).map((e) => epochKeys(seed, e, [ctx.local, ctx.peer])),
  });
  const [out] = sasOf(ctx, seed, epoch);
  return { steps, cleanup: [], guard: guardOf(ctx, out, steps.at(-1)!), next: pairState(ctx, seed, epoch, epoch - 1) };
}

/** The peer sends with epoch `to` (its traffic reached that lookahead SA): follow it. */
export function planPromote(ctx: PairContext, seed: PeerSeed, state: PeerSaState, to: number): PairMove {
  const [out, inb] = sasOf(ctx, seed, to);
  const ahead = aheadSas(ctx, seed, to);
  const have = spis(state.lookahead ?? []);
  const steps = [...ahead.filter((sa) => !have.has(sa.spi)).map((sa) => stateAddStep(ctx, sa)), stateAddStep(ctx, out)];
  // The kernel sends with the newest outbound SA of the policy's reqid: the new one, from here.
  const cleanup = deleteAllBut(ctx, state, spis([inb, ...ahead]));
  return { steps, cleanup, guard: guardOf(ctx, out, steps.at(-1)!), next: pairState(ctx, seed, to, to) };
}

/**
 * This host lost some of its SAs or policies: move to the next epoch. `present` says which of the
 * recorded SAs the kernel still has: lookahead SAs still there are kept (their replay windows
 * with them); the old epoch's SAs are deleted, never reinstalled.
 */
export function planRecover(
  ctx: PairContext,
  seed: PeerSeed,
  state: PeerSaState,
  present: (sa: SaFacts) => boolean,
  lostPolicies: PolicyId[],
): PairMove {
  const epoch = nextOf(state);
  const heard = state.confirmed ?? state.epoch - 1;
  if (epoch > heard + LOOKAHEAD) {
    throw new ValidationError(
      `epoch ${epoch} is more than ${LOOKAHEAD} past epoch ${heard}, the last the peer was heard on, so it could not receive it ` +
        `(is vfwire ipsec watch running there?): on both hosts run vfwire ipsec down --peer X, then vfwire ipsec up --peer X --epoch N with the same N, above both hosts' epochs`,
    );
  }
  const [out, inb] = sasOf(ctx, seed, epoch);
  const wanted = [inb, ...aheadSas(ctx, seed, epoch)];
  const kept = spis((state.lookahead ?? []).filter(present));
  const outStep = stateAddStep(ctx, out);
  // The outbound SA last: a step failing before it leaves its key unused, to try again.
  const steps = [
    ...wanted.filter((sa) => !kept.has(sa.spi)).map((sa) => stateAddStep(ctx, sa)),
    ...[out, inb].filter((sa) => lostPolicies.some((p) => p.dir === sa.dir)).map((sa) => policyAddStep(ctx, sa)),
    outStep,
  ];
  const cleanup = deleteAllBut(ctx, state, spis(wanted), present);
  return { steps, cleanup, guard: guardOf(ctx, out, outStep), next: pairState(ctx, seed, epoch, heard) };
}

/** The peer has not yet been heard on this host's epoch: it is owed kicks (watch.ts). */
export function peerBehind(state: PeerSaState): boolean {
  return (state.confirmed ?? state.epoch - 1) < state.epoch;
}

/** Where a peer's SAs live on this host; `uplink`: the netdev holding the underlay now (failover/pf-switch.ts activeUplink). */
export function pairContext(
  cfg: Config,
  peer: PeerConfig,
  form: XfrmForm,
  uplink = cfg.underlay.interface,
): PairContext {
  return {
    peerName: peer.name,
    local: cfg.underlay.address,
    peer: peer.address,
    uplink,
    netns: underlayNetns(cfg),
    priority: cfg.ipsec.priority,
    form,
  };
}

/** Which epoch each lookahead SA of a state belongs to, newest first. */
export function lookaheadEpochs(
  ctx: PairContext,
  seed: PeerSeed,
  state: PeerSaState,
): { epoch: number; sa: SaFacts }[] {
  return aheadEpochs(state.epoch)
    .map((epoch) => ({ epoch, sa: (state.lookahead ?? []).find((sa) => sa.spi === sasOf(ctx, seed, epoch)[1].spi) }))
    .filter((x): x is { epoch: number; sa: SaFacts } => x.sa !== undefined)
    .reverse();
}

/** The nonce-guard id of an outbound SA: its key's fingerprint and its SPI. */
export function guardId(sa: PeerSa): string {
  return nonceSpaceId(sa.key, sa.spi);
}

export function guardOf(ctx: PairContext, out: PeerSa, step: Step): PairMove['guard'] {
  return { id: guardId(out), step, probe: { argv: saGetArgv(ctx.netns, out) } };
}

/** The first epoch of this seed whose outbound key was never sent with: where `ipsec up` starts. */
export function firstUnusedEpoch(ctx: PairContext, seed: PeerSeed, used: readonly string[]): number {
  for (let epoch = 1; epoch < MAX_EPOCH; epoch++) {
    if (!keyUsed(used, guardId(sasOf(ctx, seed, epoch)[0]))) return epoch;
  }
  throw new ValidationError(
    `ipsec: every epoch of the key for ${ctx.peerName} was used: make a new key (vfwire ipsec keygen --peer ${ctx.peerName} --force)`,
  );
}

/** What `ipsec down` runs, in the order of installing (it runs them in reverse). */
function pairUndo(netns: string | undefined, state: Pick<PeerSaState, 'sas' | 'lookahead'>): StepCommand[] {
  const sas = [...state.sas, ...(state.lookahead ?? [])];
  return [
    ...sas.map((sa) => ({ argv: saDeleteArgv(netns, sa) })),
    ...state.sas.map((sa) => ({ argv: policyDeleteArgv(netns, sa) })),
  ];
}

/** The state after a move to `epoch`, with the peer last heard on `confirmed`. */
export function pairState(ctx: PairContext, seed: PeerSeed, epoch: number, confirmed: number): PeerSaState {
  const [out, inb] = sasOf(ctx, seed, epoch);
  const sas = [saFacts(out), saFacts(inb)];
  const lookahead = aheadSas(ctx, seed, epoch).map(saFacts);
  return {
    key: seed.id,
    epoch,
    sas,
    lookahead,
    confirmed,
    uplink: ctx.uplink,
    installedAt: new Date().toISOString(),
    undo: pairUndo(ctx.netns, { sas, lookahead }),
  };
}

/** The outbound and inbound SA of one epoch. */
export function sasOf(ctx: PairContext, seed: PeerSeed, epoch: number): [PeerSa, PeerSa] {
  return peerSas({ ...ctx, keys: epochKeys(seed, epoch, [ctx.local, ctx.peer]) });
}

/** The inbound SAs received ahead of `epoch`. */
export function aheadSas(ctx: PairContext, seed: PeerSeed, epoch: number): PeerSa[] {
  return aheadEpochs(epoch).map((e) => sasOf(ctx, seed, e)[1]);
}

/** Deletes of the recorded SAs (still `present`) a move does not keep. */
function deleteAllBut(
  ctx: PairContext,
  state: PeerSaState,
  keep: Set<number>,
  present: (sa: SaFacts) => boolean = () => true,
): StepCommand[] {
  return [...state.sas, ...(state.lookahead ?? [])]
    .filter((sa) => present(sa) && !keep.has(sa.spi))
    .map((sa) => ({ argv: saDeleteArgv(ctx.netns, sa) }));
}

function spis(sas: { spi: number }[]): Set<number> {
  return new Set(sas.map((sa) => sa.spi));
}

function aheadEpochs(epoch: number): number[] {
  return Array.from({ length: LOOKAHEAD }, (_, i) => epoch + 1 + i).filter((e) => e <= MAX_EPOCH);
}

function nextOf(state: PeerSaState): number {
  if (state.epoch >= MAX_EPOCH)
    throw new ValidationError(
      `ipsec: epoch ${state.epoch} is the last one of this key: make a new key (vfwire ipsec keygen --force) and rotate`,
    );
  return state.epoch + 1;
}

/** What the ledger keeps of an SA: never its key. */
export function saFacts({ dir, src, dst, spi, reqid }: SaFacts): SaFacts {
  return { dir, src, dst, spi, reqid };
}
