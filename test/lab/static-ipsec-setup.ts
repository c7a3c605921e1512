// Static-key IPsec between the two sim hosts, as the lab suites set it up: `ipsec.offload: none`
// (no NIC here: the kernel's own ESP), one seed written as `ipsec keygen` writes it on host A and
// copied to B as the operator would, and `vfwire ipsec up|down|watch --once`'s own functions
// called in this process (a Node start costs seconds under TCG; the CLI is the sim tier's).

import { chmodSync, copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { ExecRunner } from '../../src/exec/runner.js';
import { generateSeed, keyFilePath, writeKeyFile } from '../../src/ipsec/keys.js';
import type { IpsecDeps } from '../../src/ipsec/deps.js';
import { closeLogger, createLogger } from '../../src/log.js';
import { ipsecDown } from '../../src/ipsec/static-sas.js';
import { stopGuest } from '../../src/sim/guest.js';
import { downTestSim, editConfig, runner, type TestSim } from '../helpers/sim.js';

export type SimHostId = 'a' | 'b';

export const configOf = (sim: TestSim, h: SimHostId) => (h === 'a' ? sim.a : sim.b).configPath;

/** Writes both hosts' ipsec config (static, offload none) and their copies of one key. */
export async function configureStaticIpsec(sim: TestSim): Promise<void> {
  const keyDir = (h: SimHostId) => join(sim.opts.dir, h, 'keys');
  for (const h of ['a', 'b'] as const) {
    editConfig(configOf(sim, h), (doc) => {
      doc.ipsec = { mode: 'static', key_dir: keyDir(h), offload: 'none' };
      // Under TCG the first SA's crypto setup alone can take seconds.
      doc.command_timeout_ms = 60_000;
    });
  }
  mkdirSync(keyDir('a'), { recursive: true, mode: 0o700 });
  await writeKeyFile(keyFilePath(keyDir('a'), 'sim-b'), 'sim-b', generateSeed());
  // The operator's copy to the peer, named after this host there.
  mkdirSync(keyDir('b'), { recursive: true, mode: 0o700 });
  copyFileSync(join(keyDir('a'), 'sim-b.key'), join(keyDir('b'), 'sim-a.key'));
  chmodSync(join(keyDir('b'), 'sim-a.key'), 0o600);
}

/** Runs `fn` with host `h`'s ipsec dependencies (its config, a runner, its logger). */
export async function withIpsecDeps<T>(sim: TestSim, h: SimHostId, fn: (d: IpsecDeps) => Promise<T>): Promise<T> {
  const c = await loadConfig(configOf(sim, h));
  const log = createLogger(c.logDir, 'lab');
  try {
    return await fn({ cfg: c, runner: new ExecRunner(c.commandTimeoutMs), log });
  } finally {
    await closeLogger(log);
  }
}

/** A suite's after(): its started guests stop, both hosts' IPsec goes down, the sim goes (side by side where it can). */
export async function tearDown(sim: TestSim | undefined, guests: string[]): Promise<void> {
  if (sim) {
    await Promise.all(guests.map((g) => stopGuest(sim.opts, g, runner).catch(() => undefined)));
    await Promise.all(
      (['a', 'b'] as const).map((h) => withIpsecDeps(sim, h, (d) => ipsecDown(d, {})).catch(() => undefined)),
    );
  }
  await downTestSim(sim);
}
