// Installed SAs and policies as the kernel names them: the commands that look them up and
// delete them, which of a peer's recorded ones the kernel no longer has, and how many packets an
// inbound SA has received.

import { ifPresent, isPresent } from '../exec/if-present.js';
import type { Runner } from '../exec/runner.js';
import { ip } from '../exec/tools.js';
import { VXLAN_PORT } from '../overlay/names.js';
import { hex32 } from './sa-ids.js';

export interface SaId {
  dir?: 'out' | 'in';
  src: string;
  dst: string;
  spi: number;
}

export interface PolicyId {
  dir: 'out' | 'in';
  src: string;
  dst: string;
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

/** The selector of a pair's policy: the VXLAN traffic between the two underlay addresses. */
export function policySelector(p: PolicyId): string[] {
  return ['src', `${p.src}/32`, 'dst', `${p.dst}/32`, 'proto', 'udp', 'dport', String(VXLAN_PORT)];
}

function policyGetArgv(netns: string | undefined, p: PolicyId): string[] {
  return ip(netns, 'xfrm', 'policy', 'get', ...policySelector(p), 'dir', p.dir);
}

export function policyDeleteArgv(netns: string | undefined, p: PolicyId): string[] {
  return ip(netns, 'xfrm', 'policy', 'delete', ...policySelector(p), 'dir', p.dir);
}

/**
 * The SAs the kernel does not have (it drops offloaded SAs with their netdev). Only the kernel's
 * "no such SA" counts as missing; any other failure (a timeout, say) throws, so nothing acts on a
 * read that did not happen (a watch would otherwise move the pair to a new epoch).
 */
export async function missingSas<T extends SaId>(runner: Runner, netns: string | undefined, sas: T[]): Promise<T[]> {
  const missing: T[] = [];
  for (const sa of sas) if (!(await present(runner, saGetArgv(netns, sa)))) missing.push(sa);
  return missing;
}

async function present(runner: Runner, argv: string[]): Promise<boolean> {
  return isPresent(runner.run({ argv }));
}

/** `<dir> <spi>` of each SA the kernel does not have. */
export async function lostSas(runner: Runner, netns: string | undefined, sas: SaId[]): Promise<string[]> {
  return (await missingSas(runner, netns, sas)).map(describeSa);
}

export function describeSa(sa: SaId): string {
  return `${sa.dir ?? ''} ${hex32(sa.spi)}`.trim();
}

/** The policies the kernel does not have (packet-offloaded policies go with their netdev too). */
export async function missingPolicies(
  runner: Runner,
  netns: string | undefined,
  policies: PolicyId[],
): Promise<PolicyId[]> {
  const lost: PolicyId[] = [];
  for (const p of policies) if (!(await present(runner, policyGetArgv(netns, p)))) lost.push(p);
  return lost;
}

/**
 * Packets an SA has carried, from `ip -s xfrm state get` ("lifetime current:" then
 * "N(bytes), M(packets)"); for packet offload the kernel asks the driver for its counters
 * first. undefined when the SA is gone or the line is not there.
 */
export async function saPackets(runner: Runner, netns: string | undefined, sa: SaId): Promise<number | undefined> {
  const res = await ifPresent(runner.run({ argv: [...ip(netns, '-s', 'xfrm', 'state', 'get', ...saIdArgs(sa))] }));
  const m = res && /lifetime current:\s*\n\s*\d+\(bytes\), (\d+)\(packets\)/.exec(res.stdout);
  return m ? Number(m[1]) : undefined;
}
