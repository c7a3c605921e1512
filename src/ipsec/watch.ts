// `vfwire ipsec watch [--once] [--interval S]`: notices SAs the kernel dropped. mlx5 deletes the
// offloaded SAs of a netdev that goes down, and with failover a bond moves xfrm offload between
// ports only in active-backup; a VM's next start is refused then (fail closed), but running VMs
// just lose their inter-host traffic. With IKEv2 the watch asks strongSwan to negotiate new
// CHILD_SAs (new keys: a fresh nonce space). With static keys a fresh nonce space needs a new key
// on both hosts, which one host cannot make alone: the watch says so, loudly, with the steps.

import type { Config } from '../config/config.js';
import type { Runner } from '../exec/runner.js';
import { readLedger } from '../ledger/store.js';
import type { Logger } from '../log.js';
import { checkIkeChildren } from './ikev2.js';
import { lostSas } from './sa-kernel.js';
import { swanctlNames } from './swanctl.js';

export interface WatchFinding {
  peer: string;
  lost: string[];
  action: string;
}

export async function watchOnce(cfg: Config, runner: Runner, log: Logger): Promise<WatchFinding[]> {
  const state = (await readLedger(cfg.stateDir)).ipsec;
  const findings: WatchFinding[] = [];
  for (const peer of cfg.peers) {
    if (!state?.peers[peer.name]) continue;
    if (cfg.ipsec.mode === 'ikev2') {
      const lost = await checkIkeChildren(cfg, runner, [peer]);
      if (lost.length === 0) continue;
      const names = swanctlNames(peer.name);
      const uri = cfg.ipsec.viciUri ? ['--uri', cfg.ipsec.viciUri] : [];
      for (const child of [names.out, names.in]) await runner.run({ argv: ['swanctl', '--initiate', '--child', child, '--timeout', '10', ...uri] }).catch(() => undefined);
      findings.push({ peer: peer.name, lost, action: 'asked strongSwan to negotiate new CHILD_SAs (fresh keys)' });
    } else {
      const lost = await lostSas(runner, cfg.underlay.netns ?? cfg.netns, state.peers[peer.name]!.sas);
      if (lost.length === 0) continue;
      findings.push({
        peer: peer.name,
        lost,
        action: `static keys cannot be reinstalled (AES-GCM nonces would repeat): vfwire ipsec keygen --peer ${peer.name} --force, copy it to ${peer.name}, then vfwire ipsec down --peer X && vfwire ipsec up --peer X on both hosts`,
      });
    }
  }
  for (const f of findings) log.error('ipsec watch: SAs lost', { peer: f.peer, lost: f.lost, action: f.action });
  return findings;
}
