// `vfwire sim demo`: the whole story on the simulated host pair, start to clean-up.

import { makeTable } from '../table.js';
import { oneLine } from '../errors.js';
import type { Runner } from '../exec/runner.js';
import { startGuest, stopGuest, type GuestSpec } from './guest.js';
import { probeAll } from './reachability.js';
import { listNetns, simDown, simUp } from './sim-host.js';
import type { SimOptions } from './topology.js';

const DEMO_GUESTS: GuestSpec[] = [
  { name: 'web1', host: 'a', vni: 100, ip: '198.19.100.1/24', encrypt: 'off' },
  { name: 'web2', host: 'b', vni: 100, ip: '198.19.100.2/24', encrypt: 'off' },
  { name: 'db1', host: 'b', vni: 200, ip: '198.19.100.3/24', encrypt: 'off' },
  { name: 'db2', host: 'a', vni: 200, ip: '198.19.100.4/24', encrypt: 'off' },
];

export interface DemoIo {
  say(line: string): void;
  /** Prints a host's `vfwire status`. */
  status(host: 'a' | 'b'): Promise<void>;
}

/** Part 1: netns guests and the isolation proof. Part 2 (sim/libvirt-demo.ts): libvirt + QEMU. */
export async function runDemo(opts: SimOptions, runner: Runner, io: DemoIo, keep = false): Promise<boolean> {
  io.say(
    `1. Two simulated hosts (netns ${opts.prefix}-a, ${opts.prefix}-b), ${opts.vfs} VFs each, underlay 198.18.0.1 <-> 198.18.0.2`,
  );
  await simUp(opts, runner);
  let ok = false;
  try {
    io.say('2. Starting guests through the vfwire hook (all in one subnet, so only the VNI separates them):');
    for (const g of DEMO_GUESTS) {
      const rec = await startGuest(opts, g, runner);
      io.say(`   ${g.name.padEnd(5)} host ${g.host}  VNI ${g.vni}  ${g.ip.padEnd(16)} VF netdev ${rec.vfDev}`);
    }
    io.say('   A guest that requires encryption, on a host pair without IPsec, must not start (fail closed):');
    try {
      await startGuest(opts, { name: 'secret', host: 'a', vni: 300, ip: '198.19.30.1/24' }, runner);
      io.say('   secret started: THIS IS A BUG');
    } catch (err) {
      io.say(`   secret refused: ${oneLine(err).replace(/^hook prepare\/begin refused: /, '')}`);
    }
    io.say('3. vfwire status, host a:');
    await io.status('a');
    io.say('   host b:');
    await io.status('b');

    io.say('4. Isolation proof: every guest pings every other');
    const probes = await probeAll(opts, DEMO_GUESTS, runner);
    const t = makeTable(['FROM', 'TO', 'SAME VNI', 'REACHED', '']);
    for (const p of probes)
      t.push([
        p.from,
        `${p.to} (${p.toIp})`,
        p.expected ? 'yes' : 'no',
        p.reached ? 'yes' : 'no',
        p.reached === p.expected ? 'ok' : 'WRONG',
      ]);
    io.say(t.toString());
    ok = probes.every((p) => p.reached === p.expected);
    io.say(ok ? '   same VNI reaches across hosts; other VNIs are unreachable.' : '   ISOLATION PROOF FAILED');
  } finally {
    if (!keep) {
      io.say('5. Stopping guests (stop hooks release everything), then removing the sim');
      for (const g of DEMO_GUESTS)
        await stopGuest(opts, g.name, runner).catch((err) => io.say(`   stop ${g.name}: ${oneLine(err)}`));
      io.say('   host a:');
      await io.status('a');
      io.say('   host b:');
      await io.status('b');
      await simDown(opts, runner);
      const left = (await listNetns(runner)).filter((n) => n.startsWith(`${opts.prefix}-`));
      io.say(left.length ? `   left behind: ${left.join(' ')}` : '   nothing left behind.');
      ok &&= left.length === 0;
    } else {
      io.say(
        `5. Left running (--keep). Try: ip netns exec ${opts.prefix}-g-web1 ping 198.19.100.2; remove with: vfwire sim down`,
      );
    }
  }
  return ok;
}
