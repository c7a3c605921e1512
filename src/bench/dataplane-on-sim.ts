// The lab notes' dataplane table, measured on a sim it builds and removes (vfwire bench
// dataplane, npm run bench), with a progress bar on stderr.

import { SingleBar } from 'cli-progress';
import { ExecRunner } from '../exec/runner.js';
import { measurePath, stepsPerPath, type DataplaneRow } from './dataplane.js';
import { withSimPaths } from './sim-paths.js';

export async function benchDataplane(seconds: number, prefix: string): Promise<DataplaneRow[]> {
  const runner = new ExecRunner(60_000);
  const bar = new SingleBar({
    format: 'dataplane [{bar}] {value}/{total} {what}',
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
  });
  try {
    return await withSimPaths({ dir: `/run/${prefix}`, prefix, vfs: 2 }, runner, async (paths) => {
      bar.start(paths.length * stepsPerPath(), 0, { what: '' });
      const rows: DataplaneRow[] = [];
      for (const [i, path] of paths.entries())
        rows.push(
          await measurePath(path, seconds, (done, _total, what) => bar.update(done, { what }), i * stepsPerPath()),
        );
      return rows;
    });
  } finally {
    bar.stop();
  }
}
