// `vfwire ipsec rotate --peer P [--commit | --finish]`: move a static-key pair to a new key file
// without a gap (make-before-break). The new key file (vfwire ipsec keygen --force, copied to the
// peer) is already on both hosts; each step runs on both hosts before the next:
//
//   rotate           add the new key's inbound SA beside the old ones: both can be received
//   rotate --commit  add the new outbound SA and delete the old one: the kernel sends with the
//                    newest outbound SA of the reqid, which the policies name, so they stay put
//   rotate --finish  delete the old inbound SAs once the peer sends with the new key, and install
//                    the new key's next epoch ahead (pair-plan.ts)
//
// The new outbound SA passes the same nonce guard as every other.

import { lockOptions, peerNamed, type PeerConfig } from '../config/config.js';
import { ValidationError } from '../errors.js';
import { applySteps, undoAll } from '../exec/apply.js';
import { withLedger } from '../ledger/store.js';
import type { PeerSaState, SaFacts } from '../ledger/types.js';
import type { Command, Step } from '../exec/step.js';
import { keyFilePath, readKeyFile, type PeerSeed } from './keys.js';
import { applyGuarded, type GuardedPlan } from './nonce-guard.js';
import { pairHost } from './host-form.js';
import {
  aheadSas,
  saFacts as facts,
  firstUnusedEpoch,
  guardOf,
  pairContext,
  pairState,
  sasOf,
  type PairContext,
} from './pair-plan.js';
import { stateAddStep } from './render-static.js';
import { saDeleteArgv } from './sa-kernel.js';
import type { IpsecDeps, PeerOutcome } from './deps.js';

export type RotateStep = 'start' | 'commit' | 'finish';

interface RotationPlan {
  steps: Step[];
  cleanup: Command[];
  /** Set when the step installs an outbound SA. */
  guard?: GuardedPlan['guard'];
  next: PeerSaState;
}

export async function ipsecRotate(
  { cfg, runner, log }: IpsecDeps,
  opts: { peer: string; step: RotateStep; dryRun?: boolean },
): Promise<PeerOutcome> {
  if (cfg.ipsec.mode !== 'static')
    throw new ValidationError(
      `ipsec rotate: only for ipsec.mode static (${cfg.ipsec.mode}: strongSwan rekeys by itself)`,
    );
  const peer = peerNamed(cfg, opts.peer);
  const { form, uplink } = await pairHost(cfg, runner);
  return withLedger(
    cfg.stateDir,
    async (txn) => {
      const state = txn.data.ipsec?.peers[peer.name];
      if (!state) throw new ValidationError(`ipsec rotate: peer ${peer.name} is not up (vfwire ipsec up)`);
      const seed = await readKeyFile(keyFilePath(cfg.ipsec.keyDir, peer.name));
      const plan = planRotation(pairContext(cfg, peer, form, uplink), state, seed, opts.step, txn.data.ipsec!.used);
      if (opts.dryRun)
        return {
          peer: peer.name,
          result: 'planned',
          steps: [...plan.steps, ...plan.cleanup.map((c) => deleteStep(peer, c))],
        };
      const errors = plan.guard
        ? await applyGuarded(
            txn,
            { ...plan, guard: plan.guard },
            runner,
            `ipsec rotate: the new key's outbound SA to ${peer.name} was already used; make a new key`,
          )
        : await applySteps(plan.steps, runner).then(() => undoAll(plan.cleanup, runner));
      for (const e of errors) log.warn('ipsec rotate: delete failed', { peer: peer.name, error: e.message });
      txn.data.ipsec!.peers[peer.name] = plan.next;
      await txn.save();
      log.info('ipsec rotate', { peer: peer.name, step: opts.step, from: state.key, to: seed.id });
      const said = {
        start: 'rotating: both keys are received',
        commit: 'rotating: sending with the new key',
        finish: `rotated to key ${seed.id}, epoch ${plan.next.epoch}`,
      } as const;
      return { peer: peer.name, result: said[opts.step] };
    },
    lockOptions(cfg),
  );
}

/** The adds and deletes of one rotation step and the peer's state after it. */
function planRotation(
  ctx: PairContext,
  state: PeerSaState,
  seed: PeerSeed,
  step: RotateStep,
  used: readonly string[],
): RotationPlan {
  const peer = { name: ctx.peerName };
  const phase = state.rotating?.phase;
  const del = (sa: SaFacts): Command => ({ argv: saDeleteArgv(ctx.netns, sa) });

  if (step === 'start') {
    if (state.rotating)
      throw new ValidationError(
        `ipsec rotate: peer ${peer.name} is already rotating to key ${state.rotating.key ?? '?'} (next: --${phase === 'receiving' ? 'commit' : 'finish'})`,
      );
    if (state.key === seed.id)
      throw new ValidationError(
        `ipsec rotate: the key file of ${peer.name} is the key in use (${seed.id}): make the next key first (vfwire ipsec keygen --peer ${peer.name} --force) and copy it to the peer`,
      );
    const epoch = firstUnusedEpoch(ctx, seed, used);
    const [, inb] = sasOf(ctx, seed, epoch);
    return {
      steps: [stateAddStep(ctx, inb)],
      cleanup: [],
      next: { ...state, rotating: { key: seed.id, epoch, phase: 'receiving', sas: [facts(inb)] } },
    };
  }
  const rotating = state.rotating;
  if (!rotating || rotating.key !== seed.id)
    throw new ValidationError(
      `ipsec rotate: no rotation of ${peer.name} to its key file's key (${seed.id}) under way (start with: vfwire ipsec rotate --peer ${peer.name})`,
    );
  const [out, inb] = sasOf(ctx, seed, rotating.epoch);
  if (step === 'commit') {
    if (phase !== 'receiving')
      throw new ValidationError(`ipsec rotate: ${peer.name} already sends with the new key (next: --finish)`);
    const add = stateAddStep(ctx, out);
    const oldOut = state.sas.find((s) => s.dir === 'out')!;
    return {
      steps: [add],
      cleanup: [del(oldOut)],
      guard: guardOf(ctx, out, add),
      next: { ...state, rotating: { ...rotating, phase: 'sending', sas: [facts(out), facts(inb)] } },
    };
  }
  if (phase !== 'sending')
    throw new ValidationError(
      `ipsec rotate: ${peer.name} does not send with the new key yet (run --commit on both hosts first)`,
    );
  const next = pairState(ctx, seed, rotating.epoch, rotating.epoch);
  const oldIn = [...state.sas.filter((s) => s.dir === 'in'), ...(state.lookahead ?? [])];
  return {
    steps: aheadSas(ctx, seed, rotating.epoch).map((sa) => stateAddStep(ctx, sa)),
    cleanup: oldIn.map(del),
    next,
  };
}

function deleteStep(peer: PeerConfig, c: Command): Step {
  return { kind: 'xfrm-state-delete', device: peer.name, owner: { kind: 'peer', name: peer.name }, do: c };
}
