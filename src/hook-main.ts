#!/usr/bin/env node
// The hook's entry point: `hook-main.js -- VM OP SUBOP EXTRA`, domain XML on stdin, as
// hooks/qemu runs it. Separate from cli.ts so a hook call loads no command-line parser and
// none of the other commands. The config comes from $VFWIRE_CONFIG or the default path.

import { invokeHook } from './hook/invoke.js';

const args = process.argv.slice(2);
if (args[0] === '--') args.shift();
const [vm, op, subOp] = args;
if (vm === undefined || op === undefined || subOp === undefined) {
  process.stderr.write('usage: hook-main.js -- VM OPERATION SUB-OPERATION [EXTRA] < domain.xml\n');
  process.exitCode = 2;
} else {
  // No top-level await: the hook's bundle is CommonJS (scripts/bundle.mjs, src/code-cache.ts).
  void invokeHook(vm, op, subOp).then((code) => {
    process.exitCode = code;
  });
}
