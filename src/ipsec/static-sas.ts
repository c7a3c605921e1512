// `vfwire ipsec up|down`: the host-pair SAs are host state, brought up for every configured peer
// before any VM's overlay uses them (on mlx5 the IPsec tables must exist before tc rules are
// offloaded), recorded in the ledger, and guarded against AES-GCM nonce reuse.

import { lockOptions, type Config, type PeerConfig, peerNamed, underlayNetns } from '../config/config.js';
import { ValidationError } from '../errors.js';
import { undoAll } from '../exec/apply.js';
import { readBootId } from '../host/boot-id.js';
import { forgetEarlierBoot } from '../ledger/record.js';
import { withLedger } from '../ledger/store.js';
import type { IpsecState } from '../ledger/types.js';
import { TC_RULES, type IpsecDeps, type PeerOutcome } from './deps.js';
import { pairHost } from './host-form.js';
import { keyFilePath, readKeyFile } from './keys.js';
import { kickPeer } from './kick.js';
import { applyGuarded } from './nonce-guard.js';
import { firstUnusedEpoch, pairContext, planUp } from './pair-plan.js';
import { hex32 } from './sa-ids.js';
import { saDeleteArgv } from './sa-kernel.js';
import { bringTcRulesBack, hasTcRules, takeTcRulesDown, tcPeerAddresses, tcRulesDown } from './tc-order.js';

export async function ipsecUp(
  deps: IpsecDeps,
  opts: { peer?: string; dryRun?: boolean; epoch?: number },
): Promise<PeerOutcome[]> {
  const { cfg, runner, log } = deps;
  requireStatic(cfg);
  const peers = selectPeers(cfg, opts.peer);
  const { form, uplink } = await pairHost(cfg, runner);
  return withLedger(
    cfg.stateDir,
    async (txn) => {
      if (!opts.dryRun && forgetEarlierBoot(txn.data, await readBootId())) await txn.save();
      const state: IpsecState = (txn.data.ipsec ??= { peers: {}, used: [] });
      const out: PeerOutcome[] = [];
      // The first SAs beside tc-flower rules the ledger records: the rules go first (tc-order.ts).
      const reorder = hasTcRules(txn.data) && (Object.keys(state.peers).length === 0 || state.tcRulesDown === true);
      if (reorder) {
        if (opts.dryRun) out.push({ peer: TC_RULES, result: 'planned', steps: tcRulesDown(txn.data) });
        else await takeTcRulesDown(txn, runner, log);
      }
      for (const peer of peers) {
        const seed = await readKeyFile(keyFilePath(cfg.ipsec.keyDir, peer.name));
        const ctx = pairContext(cfg, peer, form, uplink);
        const installed = state.peers[peer.name];
        if (installed) {
          if (installed.key !== seed.id)
            throw new ValidationError(
              `ipsec: peer ${peer.name} is up with another key than its key file's: rotate to it (vfwire ipsec rotate --peer ${peer.name}), or run vfwire ipsec down --peer ${peer.name} first`,
            );
          out.push({ peer: peer.name, result: `already up (epoch ${installed.epoch})` });
          continue;
        }
        // After a reboot this is the epoch after the last one used: the peer, still on that one,
        // has it installed ahead and follows (pair-plan.ts).
        const epoch = opts.epoch ?? firstUnusedEpoch(ctx, seed, state.used);
        const move = planUp(ctx, seed, epoch);
        if (opts.dryRun) {
          out.push({ peer: peer.name, result: 'planned', steps: move.steps });
          continue;
        }
        await applyGuarded(
          txn,
          move,
          runner,
          `ipsec: epoch ${epoch} of the key for peer ${peer.name} was already used; installing it again would reuse AES-GCM nonces. ` +
            `Leave out --epoch (vfwire takes the next unused one), or make a new key (vfwire ipsec keygen --peer ${peer.name} --force) and copy it to the peer`,
        );
        // The peer may still be on the epoch before (after a reboot here): the watch kicks it
        // until it is heard on this one (peerBehind).
        state.peers[peer.name] = move.next;
        await txn.save();
        await kickPeer(runner, log, ctx);
        log.info('ipsec up', { peer: peer.name, key: seed.id, epoch, spis: move.next.sas.map((s) => hex32(s.spi)) });
        out.push({ peer: peer.name, result: `up (epoch ${epoch})` });
      }
      if (reorder) out.push({ peer: TC_RULES, ...(await bringTcRulesBack(txn, cfg, runner, log, opts.dryRun)) });
      return out;
    },
    lockOptions(cfg),
  );
}

export async function ipsecDown(deps: IpsecDeps, opts: { peer?: string; dryRun?: boolean }): Promise<PeerOutcome[]> {
  const { cfg, runner, log } = deps;
  const peers = selectPeers(cfg, opts.peer);
  return withLedger(
    cfg.stateDir,
    async (txn) => {
      const out: PeerOutcome[] = [];
      // tc-flower: encap rules must not outlive the SAs they go through (tc-order.ts).
      if (hasTcRules(txn.data) && !txn.data.ipsec?.tcRulesDown) {
        const staying = cfg.peers.filter((p) => txn.data.ipsec?.peers[p.name] && !peers.includes(p));
        const used = tcPeerAddresses(txn.data);
        const cut = peers.filter((p) => used.has(p.address) && txn.data.ipsec?.peers[p.name]);
        if (staying.length && cut.length) {
          throw new ValidationError(
            `ipsec down --peer ${cut.map((p) => p.name).join(',')}: tc-flower rules encapsulate to it, and the NIC would send them in clear without its SAs; run ipsec down for every peer (it takes the rules down first), or stop the VMs on its VNIs`,
          );
        }
        if (!staying.length) {
          if (opts.dryRun) out.push({ peer: TC_RULES, result: 'planned', steps: tcRulesDown(txn.data) });
          else await takeTcRulesDown(txn, runner, log);
        }
      }
      for (const peer of peers) {
        const installed = txn.data.ipsec?.peers[peer.name];
        if (!installed) {
          out.push({ peer: peer.name, result: 'not up' });
          continue;
        }
        // A rotation half done has SAs of the new key too.
        const rotating = (installed.rotating?.sas ?? []).map((sa) => ({ argv: saDeleteArgv(underlayNetns(cfg), sa) }));
        const commands = [...installed.undo, ...rotating].reverse();
        if (opts.dryRun) {
          out.push({
            peer: peer.name,
            result: 'planned',
            steps: commands.map((c) => ({
              kind: 'xfrm-delete',
              device: peer.name,
              owner: { kind: 'peer', name: peer.name },
              do: c,
            })),
          });
          continue;
        }
        const errors = await undoAll(commands, runner);
        for (const e of errors) log.warn('ipsec down: step failed', { peer: peer.name, error: e.message });
        delete txn.data.ipsec!.peers[peer.name];
        await txn.save();
        log.info('ipsec down', { peer: peer.name, epoch: installed.epoch });
        out.push({ peer: peer.name, result: 'down' });
      }
      return out;
    },
    lockOptions(cfg),
  );
}

function requireStatic(cfg: Config): void {
  if (cfg.ipsec.mode !== 'static')
    throw new ValidationError(
      `ipsec: ipsec.mode is ${cfg.ipsec.mode} in ${cfg.path}; set it to static to use key files`,
    );
}

function selectPeers(cfg: Config, name?: string): PeerConfig[] {
  return name === undefined ? cfg.peers : [peerNamed(cfg, name)];
}
