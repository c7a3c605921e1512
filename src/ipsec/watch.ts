// `vfwire ipsec watch [--once] [--interval S]`: keeps the SAs to every peer in the kernel. mlx5
// deletes the offloaded SAs (and policies) of a netdev that goes down, and with failover a bond
// moves xfrm offload between ports only in active-backup; a VM's next start is refused then (fail
// closed), but running VMs just lose their inter-host traffic.
//
// failover pf-switch: first, when the PF holding the underlay lost its link and the other has
// one, the watch moves the address there (failover/pf-switch.ts); static pairs whose SAs are
// offloaded to the old port then move to their next epoch, offloaded to the new one.
//
// IKEv2: the watch asks strongSwan to negotiate new CHILD_SAs (fresh keys). Static keys: the
// watch moves the pair to its next epoch, whose keys come fresh from the key file's seed, and
// kicks the peer; it also follows a peer that moved first (pair-plan.ts says how both work).

import { lockOptions, type Config, type PeerConfig, underlayNetns } from '../config/config.js';
import { oneLine } from '../errors.js';
import { undoAll } from '../exec/apply.js';
import type { Runner } from '../exec/runner.js';
import type { WatchFinding } from './watch-finding.js';
import { announceUplink, moveUplink } from './uplink-move.js';
import { readBootId } from '../host/boot-id.js';
import { readLedger, withLedger } from '../ledger/store.js';
import type { LedgerData, PeerSaState, SaFacts } from '../ledger/types.js';
import type { Logger } from '../log.js';
import { activeUplink, pfSwitch, strandedOn } from '../failover/pf-switch.js';
import { checkIkeChildren } from './ikev2.js';
import { keyFilePath, readKeyFile, type PeerSeed } from './keys.js';
import { hostXfrmForm } from './host-form.js';
import type { XfrmForm } from './xfrm-form.js';
import { kickPeer } from './kick.js';
import { applyGuarded } from './nonce-guard.js';
import { lookaheadEpochs, pairContext, peerBehind, planPromote, planRecover, type PairContext } from './pair-plan.js';
import { hex32 } from './sa-ids.js';
import { describeSa, missingPolicies, missingSas, saPackets } from './sa-kernel.js';
import { swanctlNames } from './swanctl.js';
import { TC_RULES } from './deps.js';
import { bringTcRulesBack, hasTcRules, takeTcRulesDown } from './tc-order.js';

export { UNDERLAY, type WatchFinding } from './watch-finding.js';

/** A peer that has not followed a move for this long is reported (its watch may not run). */
const FOLLOW_WITHIN_MS = 60_000;

export async function watchOnce(cfg: Config, runner: Runner, log: Logger): Promise<WatchFinding[]> {
  const ledger = await readLedger(cfg.stateDir);
  const state = ledger.ipsec;
  const findings: WatchFinding[] = [];
  const earlierBoot = ledger.bootId !== undefined && ledger.bootId !== (await readBootId());
  // Read once a round, and only when a static pair is looked at.
  let form: Promise<XfrmForm> | undefined;
  const formOnce = () => (form ??= hostXfrmForm(cfg, runner));
  // Whether tc rules need the order is the ledger's to say (rules it records), not the config's.
  const tcReorder = !earlierBoot && cfg.ipsec.mode === 'static' && (await tcNeedsReorder(cfg, runner, log, ledger));
  const moved = !earlierBoot && pfSwitch(cfg) ? await moveUplink(cfg, runner, log) : undefined;
  if (moved) findings.push(moved.finding);
  // The peers may follow the move once its SAs are on the new port: CPU SAs (offload none) belong
  // to no netdev, so at once; offloaded ones after the peer loop below has re-homed them.
  const announceFirst = cfg.ipsec.offload === 'none';
  if (moved?.announce && announceFirst) await announceUplink(runner, log, moved.announce, moved.finding);
  let uplink: Promise<string> | undefined;
  const uplinkOnce = () => (uplink ??= activeUplink(cfg, runner));
  for (const peer of cfg.peers) {
    const installed = state?.peers[peer.name];
    if (!installed) continue;
    // Those SAs went with the reboot; `ipsec up` starts afresh (acting on them here would
    // install SAs the ledger then forgets).
    const finding: WatchFinding | undefined = earlierBoot
      ? { peer: peer.name, lost: [], action: 'recorded in an earlier boot: run vfwire ipsec up', recovered: false }
      : cfg.ipsec.mode === 'ikev2'
        ? await watchIke(cfg, runner, log, peer)
        : await watchStatic(cfg, runner, log, peer, installed, formOnce, uplinkOnce);
    if (!finding) continue;
    findings.push(finding);
    if (finding.recovered)
      log.warn('ipsec watch: recovered', { peer: finding.peer, lost: finding.lost, action: finding.action });
    else log.error('ipsec watch: not in place', { peer: finding.peer, lost: finding.lost, action: finding.action });
  }
  if (tcReorder) findings.push(await tcBack(cfg, runner, log));
  if (moved?.announce && !announceFirst) await announceUplink(runner, log, moved.announce, moved.finding);
  return findings;
}

/**
 * tc-flower: when every SA is gone (an uplink that went down took them all, and with the last
 * one the NIC's IPsec tables) the rules must go before the first SA can come back (tc-order.ts).
 * Also true while rules taken down earlier are not back yet. Looks at the round's lock-free
 * ledger read and stops at the first peer with an SA still there; takes the lock only to take rules down.
 */
async function tcNeedsReorder(cfg: Config, runner: Runner, log: Logger, ledger: LedgerData): Promise<boolean> {
  const state = ledger.ipsec;
  if (!state || !hasTcRules(ledger)) return false;
  if (state.tcRulesDown) return true;
  const peers = Object.values(state.peers);
  if (peers.length === 0) return false;
  for (const p of peers) if ((await missingSas(runner, underlayNetns(cfg), p.sas)).length < p.sas.length) return false;
  return withLedger(
    cfg.stateDir,
    async (txn) => {
      if (!hasTcRules(txn.data)) return false;
      if (!txn.data.ipsec?.tcRulesDown) await takeTcRulesDown(txn, runner, log);
      return true;
    },
    lockOptions(cfg),
  );
}

async function tcBack(cfg: Config, runner: Runner, log: Logger): Promise<WatchFinding> {
  const out = await withLedger(
    cfg.stateDir,
    async (txn) => {
      // The rules go back only over SAs that are in the kernel now.
      for (const [name, p] of Object.entries(txn.data.ipsec?.peers ?? {})) {
        if ((await missingSas(runner, underlayNetns(cfg), p.sas)).length)
          return { result: `still down: the SAs to ${name} are not all in the kernel` };
      }
      return bringTcRulesBack(txn, cfg, runner, log);
    },
    lockOptions(cfg),
  );
  return { peer: TC_RULES, lost: [], action: out.result, recovered: out.result.startsWith('back') };
}

async function watchIke(cfg: Config, runner: Runner, log: Logger, peer: PeerConfig): Promise<WatchFinding | undefined> {
  const lost = await checkIkeChildren(cfg, runner, [peer]);
  if (lost.length === 0) return undefined;
  const names = swanctlNames(peer.name);
  const uri = cfg.ipsec.viciUri ? ['--uri', cfg.ipsec.viciUri] : [];
  // An initiate that fails is told in the log; whether the CHILD_SAs came is read just after.
  for (const child of [names.out, names.in])
    await runner
      .run({ argv: ['swanctl', '--initiate', '--child', child, '--timeout', '10', ...uri] })
      .catch((err: unknown) =>
        log.warn('ipsec watch: swanctl --initiate failed', { peer: peer.name, child, error: oneLine(err) }),
      );
  const still = await checkIkeChildren(cfg, runner, [peer]);
  return {
    peer: peer.name,
    lost,
    action: 'asked strongSwan to negotiate new CHILD_SAs (fresh keys)',
    recovered: still.length === 0,
  };
}

async function watchStatic(
  cfg: Config,
  runner: Runner,
  log: Logger,
  peer: PeerConfig,
  seen: PeerSaState,
  form: () => Promise<XfrmForm>,
  uplink: () => Promise<string>,
): Promise<WatchFinding | undefined> {
  const ctx = pairContext(cfg, peer, await form(), await uplink());
  // Offloaded to a port the underlay left (pf-switch): in the kernel, and useless. CPU SAs
  // (offload none) belong to no netdev and stay.
  const stranded = strandedOn(cfg, seen, ctx.uplink);
  const missing = stranded
    ? []
    : await missingSas(runner, ctx.netns, [...seen.sas, ...(seen.lookahead ?? []), ...(seen.rotating?.sas ?? [])]);
  const missingPols = stranded
    ? seen.sas.map(({ dir, src, dst }) => ({ dir, src, dst }))
    : await missingPolicies(runner, ctx.netns, seen.sas);
  const lost = stranded
    ? [`SAs and policies offloaded to ${stranded}, the underlay is on ${ctx.uplink}`]
    : [...missing.map(describeSa), ...missingPols.map((p) => `policy ${p.dir}`)];
  const seed = seen.rotating
    ? undefined
    : await readKeyFile(keyFilePath(cfg.ipsec.keyDir, peer.name)).catch((err: Error) => err);
  const usable = seed && !(seed instanceof Error) && seed.id === seen.key ? seed : undefined;
  const movedTo = lost.length === 0 && usable ? await peerEpoch(runner, ctx, usable, seen) : undefined;
  if (lost.length === 0 && movedTo === undefined)
    return peerBehind(seen) ? awaitPeer(cfg, runner, log, ctx, seen) : undefined;

  const refuse = (why: string): WatchFinding => ({ peer: peer.name, lost, action: why, recovered: false });
  if (seen.rotating)
    return refuse(
      `a key rotation is under way: finish it (vfwire ipsec rotate --peer ${peer.name} --commit/--finish), or vfwire ipsec down && up on both hosts`,
    );
  if (seed instanceof Error) return refuse(`cannot read the key file: ${seed.message}`);
  if (!usable)
    return refuse(
      `the SAs come from another key than the key file's: vfwire ipsec down --peer ${peer.name} && vfwire ipsec up --peer ${peer.name}`,
    );

  try {
    return await withLedger(
      cfg.stateDir,
      async (txn) => {
        const now = txn.data.ipsec?.peers[peer.name];
        // Someone (up, down, rotate, another watch) changed the pair since the look: next round.
        if (!now || now.key !== seen.key || now.epoch !== seen.epoch || now.rotating) return undefined;
        // The stranded pair goes first: the new port takes the same inbound SPIs (xfrm states are
        // unique by daddr, SPI and protocol whatever their netdev). Meanwhile the admission's
        // `ipsec out reqid` rule drops the VXLAN the missing policy would let out in clear.
        const present = (sa: SaFacts) => !stranded && !missing.some((m) => m.spi === sa.spi);
        const move = lost.length
          ? planRecover(ctx, usable, now, present, missingPols)
          : planPromote(ctx, usable, now, movedTo!);
        if (stranded)
          for (const e of await undoAll([...now.undo].reverse(), runner))
            log.warn('ipsec watch: removing a stranded SA failed', { peer: peer.name, error: e.message });
        const errors = await applyGuarded(
          txn,
          move,
          runner,
          `ipsec watch: epoch ${move.next.epoch} to ${peer.name} was already used here (a move that failed half-way): on both hosts run vfwire ipsec down --peer X, then vfwire ipsec up --peer X`,
        );
        for (const e of errors) log.warn('ipsec watch: delete failed', { peer: peer.name, error: e.message });
        txn.data.ipsec!.peers[peer.name] = move.next;
        await txn.save();
        await kickPeer(runner, log, ctx);
        const spis = `out ${hex32(move.next.sas[0]!.spi)}, in ${hex32(move.next.sas[1]!.spi)}`;
        const action = lost.length
          ? `moved to epoch ${move.next.epoch} (fresh keys; ${spis}); the peer follows`
          : `the peer moved to epoch ${move.next.epoch}: followed (${spis})`;
        return { peer: peer.name, lost, action, recovered: true };
      },
      lockOptions(cfg),
    );
  } catch (err) {
    return refuse(`moving to epoch ${seen.epoch + 1} failed: ${(err as Error).message}`);
  }
}

/** The newest lookahead epoch the peer's traffic arrived on, if any: it moved there. */
async function peerEpoch(
  runner: Runner,
  ctx: PairContext,
  seed: PeerSeed,
  seen: PeerSaState,
): Promise<number | undefined> {
  for (const { epoch, sa } of lookaheadEpochs(ctx, seed, seen)) {
    if (((await saPackets(runner, ctx.netns, sa)) ?? 0) > 0) return epoch;
  }
  return undefined;
}

/** While the peer is behind: done once its traffic arrives on this epoch, else kick it again. */
async function awaitPeer(
  cfg: Config,
  runner: Runner,
  log: Logger,
  ctx: PairContext,
  seen: PeerSaState,
): Promise<WatchFinding | undefined> {
  const inbound = seen.sas.find((sa) => sa.dir === 'in')!;
  if (((await saPackets(runner, ctx.netns, inbound)) ?? 0) === 0) {
    await kickPeer(runner, log, ctx);
    if (Date.now() - Date.parse(seen.installedAt) < FOLLOW_WITHIN_MS) return undefined;
    return {
      peer: ctx.peerName,
      lost: [],
      action: `nothing received from ${ctx.peerName} on epoch ${seen.epoch} since ${seen.installedAt}: is vfwire ipsec watch running there? (kicking it each round)`,
      recovered: false,
    };
  }
  await withLedger(
    cfg.stateDir,
    async (txn) => {
      const now = txn.data.ipsec?.peers[ctx.peerName];
      if (now?.epoch !== seen.epoch || now.key !== seen.key) return;
      now.confirmed = seen.epoch;
      await txn.save();
    },
    lockOptions(cfg),
  );
  log.info('ipsec watch: the peer followed', { peer: ctx.peerName, epoch: seen.epoch });
  return undefined;
}
