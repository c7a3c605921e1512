// The lab notes' dataplane table, measured on a sim it builds and removes (vfwire bench
// dataplane, npm run bench), with a progress bar on stderr.

import { SingleBar } from 'cli-progress';
import { ExecRunner } from '../exec/runner.js';
import { measurePath, stepsPerPath, type DataplaneRow } from './dataplane.js';
import { withSimPaths } from './sim-paths.js';

/**
 * One overlay row per overlay (each on a sim of its own), then the raw underlay of the first:
 * the baseline the ratios are taken against, in the same run. `where` labels the rows.
 */
export async function benchDataplane(
  seconds: number,
  prefix: string,
  overlays: ('bridge' | 'ovs')[] = ['bridge'],
  where = 'sim',
): Promise<DataplaneRow[]> {
  const runner = new ExecRunner(60_000);
  const bar = new SingleBar({
    format: 'dataplane [{bar}] {value}/{total} {what}',
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
  });
  try {
    const total = (overlays.length + 1) * stepsPerPath();
    bar.start(total, 0, { what: '' });
    const rows: DataplaneRow[] = [];
    let baseline: DataplaneRow | undefined;
    for (const [n, overlay] of overlays.entries()) {
      const opts = { dir: `/run/${prefix}`, prefix, vfs: 2, overlay };
      await withSimPaths(
        opts,
        runner,
        async ([path, underlay]) => {
          const at = rows.length * stepsPerPath();
          rows.push(await measurePath(path!, seconds, (done, _t, what) => bar.update(done, { what }), at));
          if (n === 0)
            baseline = await measurePath(
              underlay!,
              seconds,
              (done, _t, what) => bar.update(done, { what }),
              overlays.length * stepsPerPath(),
            );
        },
        where,
      );
    }
    return [...rows, baseline!];
  } finally {
    bar.stop();
  }
}
