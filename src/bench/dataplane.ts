// The lab notes' benchmark method, exactly: iperf3 --parallel T --bidi at MTU 1500 and 9000 with
// T = 2 and 6, each point run 3 times and the median of the 6 values (both directions) kept;
// latency by `ping -fc 10000`, one warm-up run then 3 runs, median of mean and of mdev.

import { iperf } from './iperf.js';
import { floodPing } from './ping.js';
import { median, round } from './stats.js';

const MTUS = [1500, 9000] as const;
const THREADS = [2, 6] as const;
const RUNS = 3;

export interface Path {
  approach: string;
  serverNs: string;
  serverIp: string;
  clientNs: string;
  /** Sets the MTU of both ends of the path for the next measurements. */
  setMtu(mtu: number): Promise<void>;
}

export interface DataplaneRow {
  approach: string;
  /** Gb/s, keyed `iperf3/<MTU>/<THREADS>`. */
  iperf: Record<string, number>;
  pingMeanUs: number;
  pingMdevUs: number;
}

export type Progress = (done: number, total: number, what: string) => void;

export function stepsPerPath(): number {
  return MTUS.length * THREADS.length * RUNS + 4;
}

export async function measurePath(path: Path, seconds: number, progress: Progress, offset = 0): Promise<DataplaneRow> {
  const total = stepsPerPath();
  let done = 0;
  const tick = (what: string) => progress(offset + ++done, offset + total, `${path.approach}: ${what}`);
  const row: DataplaneRow = { approach: path.approach, iperf: {}, pingMeanUs: 0, pingMdevUs: 0 };
  for (const mtu of MTUS) {
    await path.setMtu(mtu);
    for (const t of THREADS) {
      const values: number[] = [];
      for (let run = 1; run <= RUNS; run++) {
        const r = await iperf(path.serverNs, path.clientNs, path.serverIp, { parallel: t, seconds });
        values.push(r.forward, r.reverse);
        tick(`iperf3/${mtu}/${t} run ${run}`);
      }
      row.iperf[`iperf3/${mtu}/${t}`] = round(median(values));
    }
  }
  await path.setMtu(9000);
  await floodPing(path.clientNs, path.serverIp); // warm-up: initialise the flows
  tick('ping warm-up');
  const pings = [];
  for (let run = 1; run <= RUNS; run++) {
    pings.push(await floodPing(path.clientNs, path.serverIp));
    tick(`ping run ${run}`);
  }
  row.pingMeanUs = round(median(pings.map((p) => p.meanUs)), 1);
  row.pingMdevUs = round(median(pings.map((p) => p.mdevUs)), 1);
  return row;
}

/** The notes' results table (their three iperf3 columns first), in markdown. */
export function resultsTable(rows: DataplaneRow[]): string {
  const cols = ['iperf3/1500/2', 'iperf3/9000/2', 'iperf3/9000/6', 'iperf3/1500/6'];
  const head = ['Approach', ...cols.map((c) => `${c} (Gb/s)`), 'ping mean (us)', 'ping mdev (us)'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map((h) => '-'.repeat(h.length)).join(' | ')} |`];
  for (const r of rows)
    lines.push(
      `| ${[r.approach, ...cols.map((c) => String(r.iperf[c] ?? 'n/a')), String(r.pingMeanUs), String(r.pingMdevUs)].join(' | ')} |`,
    );
  return lines.join('\n');
}
