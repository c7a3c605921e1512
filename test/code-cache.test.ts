// The hook bundles' V8 code cache (src/code-cache.ts): where it may live, that V8 takes it,
// that a stale or damaged one is compiled past and replaced, and that the real loader runs with it.

import { expect } from 'chai';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { cacheFile, compileCached, writeCache } from '../src/code-cache.js';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** Compiles, runs and caches in a process of its own (V8 also caches within one process). */
async function inChild(source: string, cache: string): Promise<{ cached: boolean; value: unknown }> {
  const file = join(dirname(cache), 'b.cjs');
  writeFileSync(file, source);
  const program = `
    import { compileCached, writeCache } from ${JSON.stringify(join(SRC, 'dist/src/code-cache.js'))};
    import { readFileSync } from 'node:fs';
    const { script, cached } = compileCached(readFileSync(${JSON.stringify(file)}, 'utf8'), ${JSON.stringify(file)}, ${JSON.stringify(cache)});
    const m = { exports: undefined };
    script.runInThisContext()({}, undefined, m, ${JSON.stringify(file)}, '.');
    if (!cached) writeCache(script, ${JSON.stringify(cache)});
    console.log(JSON.stringify({ cached, value: m.exports() }));`;
  const r = await execa('node', ['--input-type=module', '-e', program]);
  return JSON.parse(r.stdout) as { cached: boolean; value: unknown };
}

describe('code cache', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vfwt-cc-'));
    chmodSync(dir, 0o700);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lives in STATE_DIR/code-cache, 0700, named for its source, only under a state directory no one else may write', () => {
    expect(cacheFile('hook-main', undefined, 'x')).to.equal(undefined);
    expect(cacheFile('hook-main', join(dir, 'absent'), 'x')).to.equal(undefined);
    expect(existsSync(join(dir, 'absent')), 'a missing state directory is not made').to.equal(false);
    const a = cacheFile('hook-main', dir, 'x = 1;');
    expect(a).to.match(new RegExp(`^${dir}/code-cache/hook-main-[0-9a-f]{16}\\.v8$`));
    expect(cacheFile('hook-main', dir, 'x = 2;'), 'same length, another source').to.not.equal(a);
    expect(statSync(join(dir, 'code-cache')).mode & 0o777).to.equal(0o700);
    chmodSync(dir, 0o777);
    expect(cacheFile('hook-main', dir, 'x = 1;')).to.equal(undefined);
  });

  it('V8 takes the cache it wrote; a damaged one is compiled past and replaced', async () => {
    const source = 'module.exports = function f() { return [1, 2, 3].map((x) => x * 2).join(","); };\n';
    const cache = join(dir, 'b.v8');
    expect(await inChild(source, cache)).to.deep.equal({ cached: false, value: '2,4,6' });
    expect(statSync(cache).mode & 0o777).to.equal(0o600);
    expect(await inChild(source, cache)).to.deep.equal({ cached: true, value: '2,4,6' });
    // One flipped byte V8 itself would run (it checks no payload): the checksum refuses it.
    const data = readFileSync(cache);
    data[data.length - 5]! ^= 0xff;
    writeFileSync(cache, data);
    expect(await inChild(source, cache)).to.deep.equal({ cached: false, value: '2,4,6' });
    expect(await inChild(source, cache)).to.deep.equal({ cached: true, value: '2,4,6' });
  });

  it('a cache that does not fit leaves nothing behind', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const small = join(dir, 'small');
    mkdirSync(small, { mode: 0o700 });
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', small]);
    try {
      const source = readFileSync(join(SRC, 'dist/bundle/hook-main.cjs'), 'utf8');
      const cache = cacheFile('hook-main', small, source)!;
      writeCache(compileCached(source, join(SRC, 'dist/bundle/hook-main.cjs'), cache).script, cache);
      expect(readdirSync(join(small, 'code-cache'))).to.deep.equal([]);
    } finally {
      await execa('umount', [small]);
    }
  });

  it('a new source replaces the caches of older ones', () => {
    const older = cacheFile('hook-main', dir, 'module.exports = 1;')!;
    writeFileSync(older, 'old');
    const newer = cacheFile('hook-main', dir, 'module.exports = 2;')!;
    writeCache(compileCached('module.exports = 2;', join(dir, 'b.cjs'), newer).script, newer);
    expect(readdirSync(join(dir, 'code-cache'))).to.deep.equal([newer.split('/').at(-1)]);
  });

  it("the hook's loader writes its cache on the first call and runs from it on the next", async () => {
    const call = () =>
      execa('node', [join(SRC, 'dist/bundle/hook-main.js'), '--', 'vm1', 'start', 'begin', '-'], {
        input: '<domain><name>vm1</name></domain>',
        env: { VFWIRE_STATE_DIR: dir, VFWIRE_CONFIG: join(dir, 'no-config.yaml') },
        reject: false,
      });
    const first = await call();
    expect(first.exitCode, first.stderr).to.equal(0);
    expect(first.stderr).to.equal('');
    const [name, ...more] = readdirSync(join(dir, 'code-cache'));
    expect(more).to.deep.equal([]);
    const cache = join(dir, 'code-cache', name!);
    expect(statSync(cache).mode & 0o777).to.equal(0o600);
    const written = readFileSync(cache);
    const second = await call();
    expect(second.exitCode, second.stderr).to.equal(0);
    // Taken, so not written again.
    expect(readFileSync(cache).equals(written)).to.equal(true);
  });
});
