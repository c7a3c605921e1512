// Where this program's own files are, found from the module that runs: tsc's output (dist/src/)
// or esbuild's bundles (dist/bundle/, one file per entry point). Both sit two levels below the
// checkout or the install directory, and a bundle keeps its entry's path under src/, so the same
// relative paths hold in either; nothing else may derive a path from import.meta.url.

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

/** The checkout or install directory: templates/, hooks/, dist/. */
export const PROGRAM_ROOT = join(HERE, '../..');

export const TEMPLATES_DIR = join(PROGRAM_ROOT, 'templates');

/** An entry point beside this one, by its path under src/: `attach-main.js`, `ipsec/kick-main.js`. */
export function entryPoint(rel: string): string {
  return join(HERE, rel);
}

/**
 * A dependency loaded with require() from this program's node_modules: koffi, outside the
 * bundles (a native addon), which run as scripts through vm.Script (src/code-cache.ts), where
 * import() needs Node's experimental loader option.
 */
export function requireDependency<T>(id: string): T {
  return createRequire(join(PROGRAM_ROOT, 'package.json'))(id) as T;
}
