// `vfwire bench dataplane`: the lab notes' results table, measured on the sim.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { benchDataplane } from '../bench/dataplane-on-sim.js';
import { resultsTable } from '../bench/dataplane.js';
import { ValidationError } from '../errors.js';

export function benchCommands(program: Command): void {
  const bench = program.command('bench').description('measurements (see also: npm run bench)');
  bench
    .command('dataplane')
    .description(
      "the lab notes' method: iperf3 --parallel 2|6 --bidi at MTU 1500|9000, 3 runs, median of 6; ping -fc 10000, warm-up + 3 runs",
    )
    .option('--seconds <n>', 'iperf3 duration per run (the notes use the default, 10)', '10')
    .option('--json <file>', 'also write the results as JSON')
    .option('--prefix <name>', 'netns prefix of the sim it builds', 'vfwbench')
    .option(
      '--overlay <kinds>',
      'overlays measured, comma-separated, each on a sim of its own: bridge, ovs (needs the openvswitch module)',
      'bridge',
    )
    .action(async (o: { seconds: string; json?: string; prefix: string; overlay: string }) => {
      const overlays = o.overlay.split(',').map((k) => k.trim());
      const bad = overlays.find((k) => k !== 'bridge' && k !== 'ovs');
      if (bad || overlays.length === 0)
        throw new ValidationError(`--overlay: "${bad ?? ''}" is not an overlay the sim builds (bridge, ovs)`);
      const rows = await benchDataplane(Number(o.seconds), o.prefix, overlays as ('bridge' | 'ovs')[]);
      console.log(resultsTable(rows));
      if (o.json) {
        await mkdir(dirname(o.json), { recursive: true });
        await writeFile(
          o.json,
          JSON.stringify({ measuredAt: new Date().toISOString(), seconds: Number(o.seconds), rows }, null, 2) + '\n',
        );
      }
    });
}
