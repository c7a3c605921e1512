// `vfwire bench dataplane`: the lab notes' results table, measured on the sim.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { measurePath, resultsTable, stepsPerPath, type DataplaneRow } from '../bench/dataplane.js';
import { withSimPaths } from '../bench/sim-paths.js';
import { ExecRunner } from '../exec/runner.js';

export function benchCommands(program: Command): void {
  const bench = program.command('bench').description('measurements (see also: npm run bench)');
  bench
    .command('dataplane')
    .description("the lab notes' method: iperf3 --parallel 2|6 --bidi at MTU 1500|9000, 3 runs, median of 6; ping -fc 10000, warm-up + 3 runs")
    .option('--seconds <n>', 'iperf3 duration per run (the notes use the default, 10)', '10')
    .option('--json <file>', 'also write the results as JSON')
    .option('--prefix <name>', 'netns prefix of the sim it builds', 'vfwbench')
    .action(async (o: { seconds: string; json?: string; prefix: string }) => {
      const rows = await benchDataplane(Number(o.seconds), o.prefix);
      console.log(resultsTable(rows));
      if (o.json) {
        await mkdir(dirname(o.json), { recursive: true });
        await writeFile(o.json, JSON.stringify({ measuredAt: new Date().toISOString(), seconds: Number(o.seconds), rows }, null, 2) + '\n');
      }
    });
}

export async function benchDataplane(seconds: number, prefix: string): Promise<DataplaneRow[]> {
  const runner = new ExecRunner(60_000);
  const bar = new SingleBar({ format: 'dataplane [{bar}] {value}/{total} {what}', stream: process.stderr, hideCursor: true, clearOnComplete: true });
  try {
    return await withSimPaths({ dir: `/run/${prefix}`, prefix, vfs: 2 }, runner, async (paths) => {
      bar.start(paths.length * stepsPerPath(), 0, { what: '' });
      const rows: DataplaneRow[] = [];
      for (const [i, path] of paths.entries()) rows.push(await measurePath(path, seconds, (done, _total, what) => bar.update(done, { what }), i * stepsPerPath()));
      return rows;
    });
  } finally {
    bar.stop();
  }
}
