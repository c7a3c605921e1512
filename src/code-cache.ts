// Runs a hook-path bundle (dist/bundle/NAME.cjs) through V8's code cache. A hook call spends
// more time compiling some 650 KB of bundled JS than doing its work, and Node 20 has no
// compile cache of its own (node:module enableCompileCache is 22.1+): vm.Script with
// cachedData skips the compile (measured here: a prepare 275 -> 195 ms, a release 335 -> 255).
// The cache is written once, after a run (so it holds the functions that run compiled too), to
// STATE_DIR/code-cache/NAME-HASH.v8, 0600 in a 0700 directory only root writes, as the ledger
// is. V8 checks a cache against its own version and flags but the source only by its length,
// and not its payload at all (a flipped byte runs; seen here), so HASH names the source and the
// file carries the SHA-256 of what follows: anything else is compiled afresh and replaced.
// Without a state directory (a CLI call), no cache.

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { Script } from 'node:vm';
import { entryPoint } from './program-files.js';

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest();

/** The cache file for this source of NAME, when the state directory is there and only its owner may write it. */
export function cacheFile(name: string, stateDir: string | undefined, source: string): string | undefined {
  if (!stateDir) return undefined;
  try {
    const st = statSync(stateDir);
    if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) return undefined;
    const dir = join(stateDir, 'code-cache');
    mkdirSync(dir, { mode: 0o700, recursive: true });
    return join(dir, `${name}-${sha256(source).toString('hex').slice(0, 16)}.v8`);
  } catch {
    // No state directory yet, or not ours to write: compile as Node would.
    return undefined;
  }
}

/** The cache's payload, when its checksum holds. */
function readCache(file: string | undefined): Buffer | undefined {
  if (!file) return undefined;
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch {
    return undefined;
  }
  const payload = data.subarray(32);
  return data.length > 32 && sha256(payload).equals(data.subarray(0, 32)) ? payload : undefined;
}

// CommonJS's own function around a module (node:module's Module.wrap, not exported to ESM); a
// hashbang line is only valid at the very start of a script, so it goes (its line stays).
const wrap = (source: string) =>
  `(function (exports, require, module, __filename, __dirname) { ${source.replace(/^#!.*/, '')}\n});`;

/** A CommonJS source compiled with its cache, if any: `cached` says whether V8 took it. */
export function compileCached(
  source: string,
  filename: string,
  cache: string | undefined,
): { script: Script; cached: boolean } {
  const cachedData = readCache(cache);
  // No import() in the bundle (scripts/bundle.mjs checks): a script has no loader for one.
  const script = new Script(wrap(source), { filename, cachedData });
  return { script, cached: cachedData !== undefined && !script.cachedDataRejected };
}

/** The cache of what the script has compiled so far, written whole or not at all; older sources' caches go. */
export function writeCache(script: Script, cache: string): void {
  const tmp = `${cache}.${process.pid}.tmp`;
  try {
    const payload = script.createCachedData();
    writeFileSync(tmp, Buffer.concat([sha256(payload), payload]), { mode: 0o600 });
    renameSync(tmp, cache);
    const stem = basename(cache).replace(/-[0-9a-f]+\.v8$/, '-');
    for (const f of readdirSync(dirname(cache)))
      if (f.startsWith(stem) && f.endsWith('.v8') && f !== basename(cache))
        rmSync(join(dirname(cache), f), { force: true });
  } catch {
    // A cache not written costs the next call its compile, nothing else; a part-written one
    // would cost the state directory its space (the ledger's, on a full disk).
    rmSync(tmp, { force: true });
  }
}

export function runWithCodeCache(name: string, stateDir = process.env.VFWIRE_STATE_DIR): void {
  const bundle = entryPoint(`${name}.cjs`);
  const source = readFileSync(bundle, 'utf8');
  const cache = cacheFile(name, stateDir, source);
  const { script, cached } = compileCached(source, bundle, cache);
  // At exit, so the cache holds the functions this run compiled as it went.
  if (cache && !cached) process.once('exit', () => writeCache(script, cache));
  const module = { exports: {} };
  const run = script.runInThisContext() as (...args: unknown[]) => void;
  run.call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle));
}
