// Tenant isolation, proven by traffic: ping every guest from every other and compare with what
// the VNIs say should happen.

import type { Runner } from '../exec/runner.js';
import { guestNetns, type SimOptions } from './topology.js';

export interface Probe {
  from: string;
  to: string;
  toIp: string;
  expected: boolean;
  reached: boolean;
}

export interface Pingable {
  name: string;
  vni: number;
  ip: string;
}

export async function probeAll(opts: SimOptions, guests: Pingable[], runner: Runner): Promise<Probe[]> {
  const probes: Probe[] = [];
  for (const from of guests) {
    for (const to of guests) {
      if (from === to) continue;
      const toIp = to.ip.split('/')[0]!;
      const reached = await ping(guestNetns(opts, from.name), toIp, runner);
      probes.push({ from: from.name, to: to.name, toIp, expected: from.vni === to.vni, reached });
    }
  }
  return probes;
}

/** One ping from inside a netns; the address must be a sim (198.18.0.0/15) address. */
export async function ping(netns: string, ip: string, runner: Runner, count = 2): Promise<boolean> {
  if (!/^198\.1[89]\./.test(ip)) throw new Error(`refusing to ping ${ip}: sim traffic stays in 198.18.0.0/15`);
  try {
    await runner.run({
      argv: ['ip', 'netns', 'exec', netns, 'ping', '-n', '-q', '-c', String(count), '-i', '0.2', '-W', '1', ip],
    });
    return true;
  } catch {
    return false;
  }
}
