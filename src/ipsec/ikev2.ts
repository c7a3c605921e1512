// `vfwire ipsec up|down` with `ipsec.mode: ikev2`: strongSwan does the key exchange and rekeys.
// vfwire renders one connection per peer (swanctl.ts), picks the offload this strongSwan can
// program (the config's offload mode, refused when strongSwan cannot), loads it through swanctl, and records the peer
// as up; a start then checks the peer's CHILD_SAs are INSTALLED.

import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { lockOptions, type Config, type PeerConfig } from '../config/config.js';
import { oneLine, ValidationError } from '../errors.js';
import { ifExists } from '../fs-absent.js';
import type { Runner } from '../exec/runner.js';
import { withLedger } from '../ledger/store.js';
import { requireOffloadKernel } from './xfrm-form.js';
import { runningKernel } from '../host/versions.js';
import { pskFilePath } from './keys.js';
import {
  chooseOffload,
  CONF_FILE,
  renderSwanctlConf,
  renderSwanctlSecrets,
  SECRETS_FILE,
  swanctlNames,
  type SwanctlInput,
} from './swanctl.js';
import { loadAllArgv, readPsks, readStrongSwanVersion, writeSwanctlFiles } from './swanctl-charon.js';
import type { IpsecDeps, PeerOutcome } from './deps.js';

export async function ikev2Up({ cfg, runner, log }: IpsecDeps, opts: { dryRun?: boolean }): Promise<PeerOutcome[]> {
  // strongSwan speaks netlink itself (no iproute2), but the kernel must be able to do the mode.
  requireOffloadKernel(runningKernel(), cfg.backend === 'real', cfg.ipsec.offload);
  const { version } = await readStrongSwanVersion({ runner, uri: cfg.ipsec.viciUri });
  const decision = chooseOffload(version, cfg.ipsec.offload);
  if ('refused' in decision) throw new ValidationError(`ipsec: ${decision.refused}`);
  const input = swanctlInput(cfg, decision.offload);
  const rendered = renderSwanctlConf(input);
  if (opts.dryRun) {
    console.log(
      `# ${join(cfg.ipsec.swanctlDir, CONF_FILE)} (strongSwan ${version}, hw_offload for ${decision.offload})`,
    );
    console.log(rendered.conf.trimEnd());
    console.log(`# then: ${loadAllArgv({ swanctlDir: cfg.ipsec.swanctlDir, uri: cfg.ipsec.viciUri }).join(' ')}`);
    return cfg.peers.map((p) => ({ peer: p.name, result: 'planned', steps: [] }));
  }
  await writeSwanctlFiles(cfg.ipsec.swanctlDir, rendered, renderSwanctlSecrets(input, await readPsks(input)));
  await runner.run({ argv: loadAllArgv({ swanctlDir: cfg.ipsec.swanctlDir, uri: cfg.ipsec.viciUri }) });
  await withLedger(
    cfg.stateDir,
    async (txn) => {
      const state = (txn.data.ipsec ??= { peers: {}, used: [] });
      // Keys and SPIs are strongSwan's; the ledger only says the peers are meant to be up.
      for (const p of cfg.peers)
        state.peers[p.name] = { epoch: 0, sas: [], installedAt: new Date().toISOString(), undo: [] };
      await txn.save();
    },
    lockOptions(cfg),
  );
  log.info('ipsec up (ikev2)', { strongswan: version, offload: decision.offload, peers: cfg.peers.map((p) => p.name) });
  return cfg.peers.map((p) => ({ peer: p.name, result: 'up' }));
}

export async function ikev2Down({ cfg, runner, log }: IpsecDeps, opts: { dryRun?: boolean }): Promise<PeerOutcome[]> {
  const uri = cfg.ipsec.viciUri ? ['--uri', cfg.ipsec.viciUri] : [];
  if (opts.dryRun) return cfg.peers.map((p) => ({ peer: p.name, result: 'planned', steps: [] }));
  // A peer with no IKE SA up has nothing to terminate; swanctl says so with a failure, logged.
  for (const p of cfg.peers)
    await runner
      .run({ argv: ['swanctl', '--terminate', '--ike', swanctlNames(p.name).conn, ...uri] })
      .catch((err: unknown) => log.info('ipsec down: nothing terminated', { peer: p.name, detail: oneLine(err) }));
  for (const f of [CONF_FILE, SECRETS_FILE]) await ifExists(unlink(join(cfg.ipsec.swanctlDir, f)));
  // Loading without vfwire's files unloads its connections and secrets from the daemon.
  await runner.run({ argv: loadAllArgv({ swanctlDir: cfg.ipsec.swanctlDir, uri: cfg.ipsec.viciUri }) });
  await withLedger(
    cfg.stateDir,
    async (txn) => {
      if (txn.data.ipsec) txn.data.ipsec.peers = {};
      await txn.save();
    },
    lockOptions(cfg),
  );
  log.info('ipsec down (ikev2)', { peers: cfg.peers.map((p) => p.name) });
  return cfg.peers.map((p) => ({ peer: p.name, result: 'down' }));
}

/** Fail closed at start: both CHILD_SAs to each peer are INSTALLED in the kernel. */
/** strict: a swanctl that fails throws (status tells it as unknown) instead of counting as none installed. */
export async function checkIkeChildren(
  cfg: Config,
  runner: Runner,
  peers: PeerConfig[],
  opts: { strict?: boolean } = {},
): Promise<string[]> {
  const missing: string[] = [];
  for (const p of peers) {
    const names = swanctlNames(p.name);
    const out = await runner
      .run({
        argv: [
          'swanctl',
          '--list-sas',
          '--ike',
          names.conn,
          ...(cfg.ipsec.viciUri ? ['--uri', cfg.ipsec.viciUri] : []),
        ],
      })
      .then(
        (r) => r.stdout,
        (err: unknown) => {
          if (opts.strict) throw err;
          return '';
        },
      );
    for (const child of [names.out, names.in])
      if (!new RegExp(`^\\s+${child}: #\\d+, reqid \\d+, INSTALLED`, 'm').test(out)) missing.push(child);
  }
  return missing;
}

function swanctlInput(cfg: Config, offload: SwanctlInput['offload']): SwanctlInput {
  return {
    localAddress: cfg.underlay.address,
    uplink: cfg.underlay.interface,
    offload,
    rekeyTime: cfg.ipsec.rekeyTime,
    peers: cfg.peers.map((p) => ({
      name: p.name,
      address: p.address,
      auth: !p.auth
        ? { pskFile: pskFilePath(cfg.ipsec.keyDir, p.name) }
        : 'psk_file' in p.auth
          ? { pskFile: p.auth.psk_file }
          : p.auth,
    })),
  };
}
