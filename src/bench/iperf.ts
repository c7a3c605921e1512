// One iperf3 measurement between two network namespaces, as the lab notes run it:
// `iperf3 --parallel T --bidi --client ADDR`, reporting each direction's received rate.

import { execa } from 'execa';
import { waitFor } from '../wait.js';

export interface IperfResult {
  /** Gb/s received by the server (client -> server). */
  forward: number;
  /** Gb/s received by the client (server -> client, --bidi). */
  reverse: number;
}

interface IperfJson {
  end?: { sum_received?: { bits_per_second?: number }; sum_received_bidir_reverse?: { bits_per_second?: number } };
  error?: string;
}

export async function iperf(
  serverNs: string,
  clientNs: string,
  serverIp: string,
  opts: { parallel: number; seconds: number; mss?: number },
): Promise<IperfResult> {
  const port = String(5201 + Math.floor(Math.random() * 500));
  const server = execa(
    'ip',
    ['netns', 'exec', serverNs, 'iperf3', '--server', '--one-off', '--bind', serverIp, '--port', port],
    { reject: false },
  );
  try {
    await waitForPort(serverNs, port);
    const args = [
      'netns',
      'exec',
      clientNs,
      'iperf3',
      '--client',
      serverIp,
      '--port',
      port,
      '--parallel',
      String(opts.parallel),
      '--bidi',
      '--time',
      String(opts.seconds),
      '--json',
    ];
    if (opts.mss) args.push('--set-mss', String(opts.mss));
    const client = await execa('ip', args, { reject: false, timeout: (opts.seconds + 30) * 1000 });
    const doc = JSON.parse(client.stdout || '{}') as IperfJson;
    if (doc.error || client.exitCode !== 0)
      throw new Error(`iperf3 ${clientNs} -> ${serverIp}: ${doc.error ?? client.stderr}`);
    const gbps = (b?: number) => (b ?? 0) / 1e9;
    return {
      forward: gbps(doc.end?.sum_received?.bits_per_second),
      reverse: gbps(doc.end?.sum_received_bidir_reverse?.bits_per_second),
    };
  } finally {
    server.kill();
    await server.catch(() => undefined);
  }
}

async function waitForPort(ns: string, port: string): Promise<void> {
  const listening = async () =>
    (await execa('ip', ['netns', 'exec', ns, 'ss', '-Htln', `sport = :${port}`], { reject: false })).stdout.trim()
      ? true
      : undefined;
  await waitFor(`the iperf3 server in ${ns} to listen on ${port}`, listening, 5000, 100);
}
