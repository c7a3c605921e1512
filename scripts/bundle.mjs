// `npm run build`'s second half: esbuild bundles the entry points libvirt's hook starts (the
// hook and the attach worker) and the one they spawn (the IPsec kick) from tsc's output, each
// under dist/bundle/ at its path under src/ (src/program-files.ts relies on that), so a hook call
// reads a few minified files instead of some 400 modules. Split into chunks at the dynamic
// imports: a call parses only what it imports (measured on the 2-core machine: an untagged
// release-to-refusal 116 ms split and minified, 158 ms as one minified file, 199 ms unbundled;
// `node -e 0` 77 ms). koffi stays outside (a native addon, loaded from node_modules). The
// CommonJS dependencies (winston, proper-lockfile, write-file-atomic) get the `require`,
// `__filename` and `__dirname` an ES module lacks.

import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { build } from 'esbuild';

const ENTRIES = ['hook-main', 'attach-main', 'ipsec/kick-main'];

// Chunks are named by their hash: a stale one would stay forever.
rmSync('dist/bundle', { recursive: true, force: true });

const result = await build({
  entryPoints: ENTRIES.map((e) => `dist/src/${e}.js`),
  outbase: 'dist/src',
  outdir: 'dist/bundle',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['koffi'],
  banner: {
    js: [
      "import { createRequire as __vfwireRequire } from 'node:module';",
      "import { fileURLToPath as __vfwirePath } from 'node:url';",
      'const require = __vfwireRequire(import.meta.url);',
      'const __filename = __vfwirePath(import.meta.url);',
      "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
    ].join(' '),
  },
  splitting: true,
  // Shared chunks beside the top-level entries: program-files.ts, wherever it lands, must sit
  // two levels below the program root, as tsc's dist/src/program-files.js does (checked below).
  chunkNames: '[name]-[hash]',
  metafile: true,
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});

for (const [out, meta] of Object.entries(result.metafile.outputs)) {
  if (Object.keys(meta.inputs).includes('dist/src/program-files.js') && dirname(out) !== 'dist/bundle')
    throw new Error(`bundle: ${out} holds src/program-files.ts away from dist/bundle/: its paths would be wrong`);
}
