// A test charon (Debian's strongSwan) in a network namespace.
//
// charon has fixed paths (pid file /run/charon.pid, compiled in) and a system charon may run on
// the machine, so each test charon gets a private /run (its own mount namespace, via unshare) and
// its own strongswan.conf (STRONGSWAN_CONF) that puts the vici socket (and any log) in a temp dir.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';

export const CHARON = process.env.VFWIRE_TEST_CHARON ?? '/usr/lib/ipsec/charon';

export interface TestCharon {
  /** For error messages. */
  name: string;
  netns: string;
  /** Its strongswan.conf: written here with `strongswanConf`, passed as STRONGSWAN_CONF in `env`. */
  confPath: string;
  strongswanConf: string;
  /** The swanctl dir vfwire writes into (its conf.d/). */
  swanctlDir: string;
  /** The vici socket strongswan.conf names; charon is up once it exists. */
  socket: string;
  env: Record<string, string>;
}

/** A running test charon: its `ip netns exec` subprocess (wrapped: an async function would await it). */
export interface Charon {
  proc: ResultPromise;
}

/** Writes the charon's files, starts it, and waits (10 s at most) for its vici socket. */
export async function startCharon(c: TestCharon): Promise<Charon> {
  mkdirSync(join(c.swanctlDir, 'conf.d'), { recursive: true });
  writeFileSync(c.confPath, c.strongswanConf);
  // As /etc/swanctl/swanctl.conf on Debian: vfwire's files are found through conf.d/.
  writeFileSync(join(c.swanctlDir, 'swanctl.conf'), 'include conf.d/*.conf\n');
  // `ip netns exec` enters the host's netns; unshare gives charon a private /run for its pid file.
  const charon = execa(
    'ip',
    [
      'netns',
      'exec',
      c.netns,
      'unshare',
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mount -t tmpfs tmpfs /run && exec "$0"',
      CHARON,
    ],
    {
      env: c.env,
      reject: false,
      all: true,
    },
  );
  for (let waited = 0; !existsSync(c.socket); waited += 50) {
    if (charon.exitCode !== null || waited > 10_000)
      throw new Error(`charon of ${c.name} did not open ${c.socket}: ${(await charon).all}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc: charon };
}

/** SIGTERM, then SIGKILL after 5 s; nothing if it is not running. */
export async function stopCharon(charon: Charon | undefined): Promise<void> {
  const proc = charon?.proc;
  if (!proc || proc.exitCode !== null) return;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await proc;
  clearTimeout(timer);
}
