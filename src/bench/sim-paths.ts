// The dataplane benchmark's endpoints on the sim: two guests of one VNI on the two sim hosts
// (the overlay), and the two hosts' underlay addresses (the baseline), on one sim pair.

import type { Runner } from '../exec/runner.js';
import { startGuest, stopGuest } from '../sim/guest.js';
import { simDown, simUp } from '../sim/sim-host.js';
import { guestNetns, UNDERLAY_MTU, type SimOptions } from '../sim/topology.js';
import type { Path } from './dataplane.js';

/** The overlay path and the raw underlay path of one sim pair; `where` labels them (the sim, or a lab kernel). */
export async function withSimPaths<T>(
  opts: SimOptions,
  runner: Runner,
  fn: (paths: Path[]) => Promise<T>,
  where = 'sim',
): Promise<T> {
  const [a, b] = await simUp(opts, runner);
  try {
    const g1 = await startGuest(
      opts,
      { name: 'bench1', host: 'a', vni: 100, ip: '198.19.100.1/24', encrypt: 'off' },
      runner,
    );
    const g2 = await startGuest(
      opts,
      { name: 'bench2', host: 'b', vni: 100, ip: '198.19.100.2/24', encrypt: 'off' },
      runner,
    );
    const mtu = (ns: string, dev: string, m: number) =>
      runner.run({ argv: ['ip', '-n', ns, 'link', 'set', 'dev', dev, 'mtu', String(m)] });
    const overlay: Path = {
      approach: `${where}: VXLAN overlay via vfwire (veth VF, ${opts.overlay === 'ovs' ? 'ovs, kernel datapath' : 'bridge'})`,
      serverNs: guestNetns(opts, 'bench2'),
      serverIp: '198.19.100.2',
      clientNs: guestNetns(opts, 'bench1'),
      setMtu: async (m) => {
        await mtu(g1.netns, g1.vfDev!, m);
        await mtu(g2.netns, g2.vfDev!, m);
      },
    };
    const underlay: Path = {
      approach: `${where}: raw underlay (veth)`,
      serverNs: b!.netns,
      serverIp: b!.underlayIp,
      clientNs: a!.netns,
      setMtu: async (m) => {
        // The baseline runs after the overlay: a smaller underlay MTU disturbs no overlay test.
        const value = m === 9000 ? UNDERLAY_MTU : m;
        await mtu(a!.netns, a!.pf, value);
        await mtu(b!.netns, b!.pf, value);
      },
    };
    return await fn([overlay, underlay]);
  } finally {
    for (const g of ['bench1', 'bench2']) await stopGuest(opts, g, runner).catch(() => undefined);
    await simDown(opts, runner);
  }
}
