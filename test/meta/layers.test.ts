// The code's shape, enforced: every src import points to the same layer or below, no src file
// grows past 300 lines, one module finds the program's files, and README's layout section names
// every src directory.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const SRC = join(ROOT, 'src');

/** Lowest first. Directories in one group may not import each other (siblings stay apart). */
export const LAYERS: string[][] = [
  ['.'], // errors, quote, log, wait, table, json-output, identifiers
  ['exec', 'libvirt', 'domain'],
  ['config', 'ledger'],
  ['host'],
  ['failover', 'overlay'],
  ['ipsec'],
  ['plan'],
  ['ops'],
  ['attach', 'gc', 'doctor'],
  ['hook'], // spawns the attach worker
  ['sim'], // runs the hook as libvirt does
  ['bench'],
  ['cli'],
  ['<entry>'], // cli.ts, hook-main.ts, attach-main.ts
];
const ENTRIES = new Set(['cli.ts', 'hook-main.ts', 'attach-main.ts']);

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return walk(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** The layer unit of a src file: its top directory, '.' for a root util, '<entry>' for an entry. */
function unitOf(file: string): string {
  const rel = relative(SRC, file);
  const parts = rel.split('/');
  if (parts.length > 1) return parts[0]!;
  return ENTRIES.has(rel) ? '<entry>' : '.';
}

function rankOf(unit: string): number {
  const rank = LAYERS.findIndex((group) => group.includes(unit));
  if (rank < 0) throw new Error(`src/${unit} has no layer in test/meta/layers.test.ts`);
  return rank;
}

/** Every relative import or export-from of a file, static or dynamic, resolved to a src path. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s+'([^']+)'/gm),
    ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
  ].map((m) => m[1]!);
  return specs.filter((s) => s.startsWith('.')).map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')));
}

const files = walk(SRC);

describe('code shape', () => {
  it('imports point to the same layer or below, never between siblings', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = unitOf(file);
      for (const target of importsOf(file)) {
        const to = unitOf(target);
        if (from === to) continue;
        const [rf, rt] = [rankOf(from), rankOf(to)];
        if (rt >= rf) wrong.push(`${relative(ROOT, file)} -> ${relative(ROOT, target)}`);
      }
    }
    expect(wrong, 'imports against the layer order').to.deep.equal([]);
  });

  it('finds the imports it checks (the check cannot pass on nothing)', () => {
    const prepare = importsOf(join(SRC, 'plan/prepare.ts')).map((f) => relative(SRC, f));
    expect(prepare).to.include('ledger/record.ts');
    expect(importsOf(join(SRC, 'hook/dispatch.ts')).map((f) => relative(SRC, f))).to.include('ops/release.ts');
  });

  it('keeps every src file at 300 lines or fewer', () => {
    const long = files
      .map((f) => ({ f: relative(ROOT, f), n: readFileSync(f, 'utf8').split('\n').length - 1 }))
      .filter(({ n }) => n > 300)
      .map(({ f, n }) => `${f}: ${n}`);
    expect(long).to.deep.equal([]);
  });

  it('derives program paths only in src/program-files.ts (the bundles sit elsewhere than tsc output)', () => {
    const own = files.filter((f) => /\bimport\.meta\b/.test(readFileSync(f, 'utf8'))).map((f) => relative(SRC, f));
    expect(own).to.deep.equal(['program-files.ts']);
  });

  it("names every src directory in README's layout section", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Layout'));
    const dirs = readdirSync(SRC).filter((d) => statSync(join(SRC, d)).isDirectory());
    const missing = dirs.filter((d) => !section.includes(`${d}/`));
    expect(missing).to.deep.equal([]);
  });
});
