// nftables as the tests read it: counters a test puts in a netns of its own (where something
// arrived: at a guest, on an underlay), and the drops vfwire's own chains counted.

import { runner } from './sim.js';

type NftJson = { nftables: { rule?: { chain: string; expr: { counter?: { packets: number }; drop?: null }[] } }[] };

const inNetns = (netns: string, ...args: string[]) => ['ip', 'netns', 'exec', netns, 'nft', ...args];

export interface Counters {
  /** Packets each match counted so far, in the order given. */
  read(): Promise<number[]>;
  remove(): Promise<void>;
}

/**
 * A table `vfwtest` in `netns` whose input hook counts each of `matches` (nft match
 * expressions), ahead of vfwire's own chains (priority -20 against their -10).
 */
export async function nftCounters(netns: string, family: 'inet' | 'arp', matches: string[]): Promise<Counters> {
  const t = `${family} vfwtest`;
  const prio = family === 'inet' ? -20 : 0;
  const script = [
    `add table ${t}`,
    `add chain ${t} in { type filter hook input priority ${prio} ; }`,
    ...matches.map((m) => `add rule ${t} in ${m} counter`),
  ].join('; ');
  await runner.run({ argv: inNetns(netns, '-f', '-'), stdin: `${script}\n` });
  return {
    async read() {
      const shown = JSON.parse(
        (await runner.run({ argv: inNetns(netns, '-j', 'list', 'table', family, 'vfwtest') })).stdout,
      ) as NftJson;
      return shown.nftables.flatMap((i) => i.rule?.expr.flatMap((e) => (e.counter ? [e.counter.packets] : [])) ?? []);
    },
    async remove() {
      await runner.run({ argv: inNetns(netns, 'delete', 'table', family, 'vfwtest') });
    },
  };
}

/** Packets the drop rule of one of vfwire's chains (table inet vfwire, or bridge vfwire) counted. */
export async function vfwireDrops(
  netns: string | undefined,
  family: 'inet' | 'bridge',
  chain: string,
): Promise<number> {
  const argv = [
    ...(netns ? ['ip', 'netns', 'exec', netns] : []),
    'nft',
    '-j',
    'list',
    'chain',
    family,
    'vfwire',
    chain,
  ];
  const shown = JSON.parse((await runner.run({ argv })).stdout) as NftJson;
  return shown.nftables
    .flatMap((i) =>
      i.rule?.expr.some((e) => 'drop' in e) ? i.rule.expr.flatMap((e) => (e.counter ? [e.counter.packets] : [])) : [],
    )
    .reduce((a, b) => a + b, 0);
}
