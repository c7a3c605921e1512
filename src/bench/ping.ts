// Latency as the lab notes measure it: a flood ping of 10000 packets; mean and mdev in µs.

import { execa } from 'execa';

export interface PingResult {
  meanUs: number;
  mdevUs: number;
}

export async function floodPing(ns: string, ip: string, count = 10_000): Promise<PingResult> {
  if (!/^198\.1[89]\./.test(ip)) throw new Error(`refusing to ping ${ip}: bench traffic stays in 198.18.0.0/15`);
  const r = await execa('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-f', '-c', String(count), ip], {
    reject: false,
    timeout: 300_000,
  });
  const m = /rtt min\/avg\/max\/mdev = [\d.]+\/([\d.]+)\/[\d.]+\/([\d.]+) ms/.exec(r.stdout);
  if (!m) throw new Error(`ping ${ip} from ${ns}: ${r.stderr || r.stdout}`.trim());
  return { meanUs: Number(m[1]) * 1000, mdevUs: Number(m[2]) * 1000 };
}
