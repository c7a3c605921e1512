// `vfwire ipsec up|down`: the host-pair SAs are host state, brought up for every configured peer
// before any VM's overlay uses them (on mlx5 the IPsec tables must exist before tc rules are
// offloaded), recorded in the ledger, and guarded against AES-GCM nonce reuse.

import type { Config, PeerConfig } from '../config/config.js';
import { ValidationError } from '../errors.js';
import { applySteps, undoAll } from '../exec/apply.js';
import type { Runner } from '../exec/runner.js';
import { readBootId } from '../host/boot-id.js';
import { forgetEarlierBoot } from '../ledger/record.js';
import { withLedger } from '../ledger/store.js';
import type { IpsecState } from '../ledger/types.js';
import type { Logger } from '../log.js';
import type { Step } from '../plan/step.js';
import { keyFilePath, nonceSpaceId, readKeyFile } from './keys.js';
import { peerSas, renderPeerSas } from './render-static.js';
import { hex32 } from './sa-ids.js';

export interface IpsecDeps {
  cfg: Config;
  runner: Runner;
  log: Logger;
}

export type PeerOutcome = { peer: string; result: string; steps?: Step[] };

export async function ipsecUp(deps: IpsecDeps, opts: { peer?: string; dryRun?: boolean }): Promise<PeerOutcome[]> {
  const { cfg, runner, log } = deps;
  requireStatic(cfg);
  const peers = selectPeers(cfg, opts.peer);
  return withLedger(cfg.stateDir, async (txn) => {
    if (!opts.dryRun && forgetEarlierBoot(txn.data, await readBootId())) await txn.save();
    const state: IpsecState = (txn.data.ipsec ??= { peers: {}, used: [] });
    const out: PeerOutcome[] = [];
    for (const peer of peers) {
      const keys = await readKeyFile(keyFilePath(cfg.ipsec.keyDir, peer.name));
      const input = { peerName: peer.name, local: cfg.underlay.address, peer: peer.address, uplink: cfg.underlay.interface, netns: cfg.underlay.netns ?? cfg.netns, keys, priority: cfg.ipsec.priority };
      const sas = peerSas(input);
      const installed = state.peers[peer.name];
      if (installed?.epoch === keys.epoch && installed.sas.every((s, i) => s.spi === sas[i]!.spi)) {
        out.push({ peer: peer.name, result: 'already up' });
        continue;
      }
      if (installed) throw new ValidationError(`ipsec: peer ${peer.name} is up with key epoch ${installed.epoch}, the key file has ${keys.epoch}: run vfwire ipsec down --peer ${peer.name} first`);
      const ids = sas.map((sa) => nonceSpaceId(sa.key, sa.spi));
      if (ids.some((id) => state.used.includes(id))) {
        throw new ValidationError(
          `ipsec: the key for peer ${peer.name} (epoch ${keys.epoch}) was already used with these SPIs; installing it again would reuse AES-GCM nonces. ` +
            `Make a new key (vfwire ipsec keygen --peer ${peer.name}), copy it to the peer, and bring both ends up`,
        );
      }
      const steps = renderPeerSas(input);
      if (opts.dryRun) {
        out.push({ peer: peer.name, result: 'planned', steps });
        continue;
      }
      // Remembered before the first SA exists, so a crash half-way cannot allow a second use;
      // forgotten again only for SAs whose `state add` certainly never ran.
      state.used.push(...ids);
      await txn.save();
      const added = new Set<string>();
      try {
        await applySteps(steps, runner, { onApplied: (s) => added.add(s.kind) });
      } catch (err) {
        const never = sas.filter((sa) => !added.has(`xfrm-state-${sa.dir}`)).map((sa) => ids[sas.indexOf(sa)]!);
        state.used = state.used.filter((id) => !never.includes(id));
        await txn.save();
        throw err;
      }
      state.peers[peer.name] = {
        epoch: keys.epoch,
        sas: sas.map(({ dir, src, dst, spi, reqid }) => ({ dir, src, dst, spi, reqid })),
        installedAt: new Date().toISOString(),
        undo: steps.flatMap((s) => (s.undo ? [s.undo] : [])),
      };
      await txn.save();
      log.info('ipsec up', { peer: peer.name, epoch: keys.epoch, spis: sas.map((s) => hex32(s.spi)) });
      out.push({ peer: peer.name, result: 'up' });
    }
    return out;
  }, { timeoutMs: cfg.lockTimeoutMs });
}

export async function ipsecDown(deps: IpsecDeps, opts: { peer?: string; dryRun?: boolean }): Promise<PeerOutcome[]> {
  const { cfg, runner, log } = deps;
  const peers = selectPeers(cfg, opts.peer);
  return withLedger(cfg.stateDir, async (txn) => {
    const out: PeerOutcome[] = [];
    for (const peer of peers) {
      const installed = txn.data.ipsec?.peers[peer.name];
      if (!installed) {
        out.push({ peer: peer.name, result: 'not up' });
        continue;
      }
      const commands = [...installed.undo].reverse();
      if (opts.dryRun) {
        out.push({ peer: peer.name, result: 'planned', steps: commands.map((c) => ({ kind: 'xfrm-delete', device: peer.name, owner: { kind: 'peer', name: peer.name }, do: c })) });
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
  }, { timeoutMs: cfg.lockTimeoutMs });
}

function requireStatic(cfg: Config): void {
  if (cfg.ipsec.mode !== 'static') throw new ValidationError(`ipsec: ipsec.mode is ${cfg.ipsec.mode} in ${cfg.path}; set it to static to use key files`);
}

function selectPeers(cfg: Config, name?: string): PeerConfig[] {
  if (name === undefined) return cfg.peers;
  const peer = cfg.peers.find((p) => p.name === name);
  if (!peer) throw new ValidationError(`--peer: no peer "${name}" in ${cfg.path} (have: ${cfg.peers.map((p) => p.name).join(', ') || 'none'})`);
  return [peer];
}
