// A packet capture on one device of a netns the test made (tcpdump, writing a pcap file), read
// back by tcpdump's own filters: what really went over a wire, counted per filter.

import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Capture {
  /** Stops the capture and counts the packets each filter (tcpdump syntax) matches, in order. */
  stop(filters: string[]): Promise<number[]>;
}

/** Starts tcpdump on `dev` in `netns`; resolves once it is listening. */
export async function startCapture(netns: string, dev: string): Promise<Capture> {
  const dir = mkdtempSync(join(tmpdir(), 'vfwt-pcap-'));
  const file = join(dir, 'wire.pcap');
  // -U: each packet written as it comes, so a stop loses none; -Z root: the file stays writable.
  const proc: ResultPromise = execa(
    'ip',
    ['netns', 'exec', netns, 'tcpdump', '-i', dev, '-n', '-U', '-Z', 'root', '-w', file],
    { reject: false, timeout: 600_000 },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      let err = '';
      proc.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (/listening on /.test(err)) resolve();
      });
      void proc.then((r) =>
        reject(new Error(`tcpdump on ${netns}/${dev} ended before listening: ${String(r.stderr).trim()}`)),
      );
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    async stop(filters) {
      try {
        proc.kill('SIGINT');
        await proc;
        const counts: number[] = [];
        for (const f of filters) {
          const r = await execa('tcpdump', ['-n', '-r', file, f], { reject: true });
          counts.push(r.stdout.split('\n').filter(Boolean).length);
        }
        return counts;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
