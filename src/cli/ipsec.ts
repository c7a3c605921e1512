// `vfwire ipsec keygen|up|down|status`: static-key IPsec to the configured peers.

import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { configPath, loadConfig, peerNamed } from '../config/config.js';
import { ExitError, ValidationError } from '../errors.js';
import { ExecRunner } from '../exec/runner.js';
import { generateSeed, keyFilePath, MAX_EPOCH, pskFilePath, writeKeyFile, writePskFile } from '../ipsec/keys.js';
import { ikev2Down, ikev2Up } from '../ipsec/ikev2.js';
import { ipsecRotate } from '../ipsec/rotate.js';
import { watchForever, watchRound } from '../ipsec/watch-loop.js';
import type { PeerOutcome } from '../ipsec/deps.js';
import { ipsecDown, ipsecUp } from '../ipsec/static-sas.js';
import { peerBehind } from '../ipsec/pair-plan.js';
import { hex32 } from '../ipsec/sa-ids.js';
import { readLedger } from '../ledger/store.js';
import { closeLogger, createLogger } from '../log.js';
import { formatCommandWithInput, type Command as StepCommand } from '../exec/step.js';
import { makeTable } from '../table.js';

export function ipsecCommands(program: Command, config: () => string): void {
  const ipsec = program
    .command('ipsec')
    .description('IPsec to the configured peers (ESP, AES-GCM, NIC offload): static keys or IKEv2 with strongSwan');

  ipsec
    .command('keygen')
    .description('write a fresh key file for a peer (0600), to copy to that peer')
    .requiredOption('--peer <name>', 'peer from the config')
    .option('--force', 'replace an existing key file (then move to it with vfwire ipsec rotate)')
    .action(async (o: { peer: string; force?: boolean }) => {
      const cfg = await loadConfig(configPath(config()));
      peerNamed(cfg, o.peer);
      if (cfg.ipsec.mode === 'ikev2') return writePsk(cfg.ipsec.keyDir, o.peer, o.force);
      const path = keyFilePath(cfg.ipsec.keyDir, o.peer);
      if (existsSync(path) && !o.force)
        throw new ValidationError(
          `${path} exists; pass --force to replace it (SAs already up keep their key until vfwire ipsec rotate)`,
        );
      await mkdir(cfg.ipsec.keyDir, { recursive: true, mode: 0o700 });
      const seed = generateSeed();
      await writeKeyFile(path, o.peer, seed);
      console.log(
        `wrote ${path} (key ${seed.id}); copy it to ${o.peer} (0600, root) and run vfwire ipsec up (or rotate, if up) on both hosts`,
      );
    });

  const upDown = async (
    o: { peer?: string; dryRun?: boolean; epoch?: number },
    run: typeof ipsecUp,
    ike: typeof ikev2Up,
  ) => {
    const cfg = await loadConfig(configPath(config()));
    const log = createLogger(cfg.logDir, 'ipsec', { syslog: cfg.syslog });
    try {
      const deps = { cfg, runner: new ExecRunner(cfg.commandTimeoutMs), log };
      if (cfg.ipsec.mode === 'ikev2') {
        if (o.peer)
          throw new ValidationError('--peer: with ikev2 vfwire loads all peers together (swanctl --load-all)');
        if (o.epoch !== undefined)
          throw new ValidationError('--epoch: only with static keys (strongSwan keys IKEv2 SAs)');
        report(await ike(deps, o));
      } else report(await run(deps, o));
    } finally {
      await closeLogger(log);
    }
  };
  ipsec
    .command('up')
    .description(
      'static: install the SAs and policies to each peer (or --peer), never a key epoch used before; ikev2: load strongSwan connections',
    )
    .option('--peer <name>', 'only this peer')
    .option('--epoch <n>', 'static: start at this key epoch (default: the first one never used here)', parseEpoch)
    .option('--dry-run', 'print the exact commands (keys shown as <key>) and change nothing')
    .action((o: { peer?: string; dryRun?: boolean; epoch?: number }) => upDown(o, ipsecUp, ikev2Up));
  ipsec
    .command('down')
    .description('remove the SAs and policies (static) or the strongSwan connections (ikev2)')
    .option('--peer <name>', 'only this peer')
    .option('--dry-run', 'print the exact commands and change nothing')
    .action((o: { peer?: string; dryRun?: boolean }) => upDown(o, ipsecDown, ikev2Down));

  ipsec
    .command('rotate')
    .description(
      'move a peer to a new key file without a gap: run each step on both hosts before the next (see --help)',
    )
    .requiredOption('--peer <name>', 'peer from the config')
    .option('--commit', 'step 2: send with the new key (after step 1 ran on both hosts)')
    .option('--finish', "step 3: drop the old key's inbound SAs (after step 2 ran on both hosts)")
    .option('--dry-run', 'print the exact commands (keys shown as <key>) and change nothing')
    .addHelpText(
      'after',
      '\nFirst: vfwire ipsec keygen --peer NAME --force, and copy the new key file to the peer.\nStep 1 (no flag) lets both keys be received; step 2 (--commit) sends with the new one; step 3 (--finish) drops the old.',
    )
    .action(async (o: { peer: string; commit?: boolean; finish?: boolean; dryRun?: boolean }) => {
      if (o.commit && o.finish) throw new ValidationError('rotate: --commit and --finish are separate steps');
      const cfg = await loadConfig(configPath(config()));
      const log = createLogger(cfg.logDir, 'ipsec', { syslog: cfg.syslog });
      try {
        report([
          await ipsecRotate(
            { cfg, runner: new ExecRunner(cfg.commandTimeoutMs), log },
            { peer: o.peer, step: o.commit ? 'commit' : o.finish ? 'finish' : 'start', dryRun: o.dryRun },
          ),
        ]);
      } finally {
        await closeLogger(log);
      }
    });

  ipsec
    .command('watch')
    .description(
      'keep the SAs in the kernel (a failover or a link down drops them): ikev2 renegotiates; static keys move the pair to the next key epoch, and follow a peer that moved; runs as a service',
    )
    .option(
      '--once',
      'check once and exit: 0 all in place (maybe after a recovery), 1 something lost and not recovered',
    )
    .option('--interval <seconds>', 'time between checks', '10')
    .action(async (o: { once?: boolean; interval: string }) => {
      const cfg = await loadConfig(configPath(config()));
      const interval = Number(o.interval);
      if (!Number.isFinite(interval) || interval < 1)
        throw new ValidationError('--interval: a number of seconds, 1 or more');
      const log = createLogger(cfg.logDir, 'ipsec-watch', { syslog: cfg.syslog });
      const deps = { cfg, runner: new ExecRunner(cfg.commandTimeoutMs), log };
      try {
        if (!o.once) await watchForever(deps, interval * 1000, (line) => console.log(line));
        if (!(await watchRound(deps, (line) => console.log(line)))) throw new ExitError(1);
        console.log('all SAs are in the kernel');
      } finally {
        await closeLogger(log);
      }
    });

  ipsec
    .command('status')
    .description('SAs installed to each peer')
    .action(async () => {
      const cfg = await loadConfig(configPath(config()));
      const state = (await readLedger(cfg.stateDir)).ipsec;
      const t = makeTable(['PEER', 'ADDRESS', 'KEY', 'EPOCH', 'OUT SPI', 'IN SPI', 'AHEAD IN SPIS', 'SINCE']);
      for (const p of cfg.peers) {
        const s = state?.peers[p.name];
        const spi = (dir: string) => (s ? hex32(s.sas.find((x) => x.dir === dir)!.spi) : '-');
        const rotating = s?.rotating ? ` -> key ${s.rotating.key ?? '?'} (${s.rotating.phase})` : '';
        const epoch = s ? `${s.epoch}${peerBehind(s) ? ' (peer not yet heard on it)' : ''}` : 'down';
        t.push([
          p.name,
          p.address,
          s ? `${s.key ?? '?'}${rotating}` : '-',
          epoch,
          spi('out'),
          spi('in'),
          s?.lookahead?.length ? s.lookahead.map((sa) => hex32(sa.spi)).join(' ') : '-',
          s?.installedAt.replace(/\.\d+Z$/, 'Z') ?? '-',
        ]);
      }
      console.log(t.toString());
    });
}

function parseEpoch(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n >= MAX_EPOCH) throw new InvalidArgumentError(`an integer 1..${MAX_EPOCH - 1}`);
  return n;
}

async function writePsk(keyDir: string, peer: string, force?: boolean): Promise<void> {
  const path = pskFilePath(keyDir, peer);
  if (existsSync(path) && !force) throw new ValidationError(`${path} exists; pass --force to replace it`);
  await mkdir(keyDir, { recursive: true, mode: 0o700 });
  await writePskFile(path);
  console.log(`wrote ${path}; copy it to ${peer} (0600, root) and run vfwire ipsec up on both hosts`);
}

function report(outcomes: PeerOutcome[]): void {
  for (const o of outcomes) {
    if (o.result !== 'planned') console.log(`${o.peer}: ${o.result}`);
    else for (const s of o.steps ?? []) console.log(redacted(s.do));
  }
}

/** A command as text with key material replaced: dry runs and errors never print keys. */
function redacted(cmd: StepCommand): string {
  return formatCommandWithInput(cmd).replace(/0x[0-9a-fA-F]{40}\b/g, '<key>');
}
