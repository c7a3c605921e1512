// An installed SA as the kernel names it (src, dst, ESP, SPI): the commands that look it up and
// delete it, and which of a peer's recorded SAs the kernel no longer has.

import type { Runner } from '../exec/runner.js';
import { ip } from '../exec/tools.js';
import { hex32 } from './sa-ids.js';

export interface SaId {
  dir?: 'out' | 'in';
  src: string;
  dst: string;
  spi: number;
}

/** The ID part of an `ip xfrm state` command. */
export function saIdArgs(sa: SaId): string[] {
  return ['src', sa.src, 'dst', sa.dst, 'proto', 'esp', 'spi', hex32(sa.spi)];
}

export function saGetArgv(netns: string | undefined, sa: SaId): string[] {
  return ip(netns, 'xfrm', 'state', 'get', ...saIdArgs(sa));
}

export function saDeleteArgv(netns: string | undefined, sa: SaId): string[] {
  return ip(netns, 'xfrm', 'state', 'delete', ...saIdArgs(sa));
}

/** `<dir> <spi>` of each SA the kernel does not have (it drops offloaded SAs with their netdev). */
export async function lostSas(runner: Runner, netns: string | undefined, sas: SaId[]): Promise<string[]> {
  const lost: string[] = [];
  for (const sa of sas) {
    const there = await runner.run({ argv: saGetArgv(netns, sa) }).then(() => true, () => false);
    if (!there) lost.push(`${sa.dir ?? ''} ${hex32(sa.spi)}`.trim());
  }
  return lost;
}
