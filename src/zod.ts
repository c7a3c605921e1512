// zod as vfwire uses it: without its JIT. zod compiles an object schema into a function at its
// first parse (`new Function`, node_modules/zod/v4/core/schemas.js generateFastpass), which
// V8's code cache cannot keep; a hook call validates a few small documents once per process,
// where that compile costs more than the interpreted parse it replaces. The schema modules
// import this first; zod itself they import as a namespace, which esbuild tree-shakes.

import { config } from 'zod';

config({ jitless: true });
