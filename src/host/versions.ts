// The kernel's and iproute2's versions, which decide the forms vfwire renders (ipsec/xfrm-form.ts)
// and what `doctor` accepts. Parsing is pure; the probe reads the running kernel and the `ip`
// that vfwire's commands will run (the first on PATH, as execa finds it).

import { release } from 'node:os';
import { ValidationError } from '../errors.js';
import type { Runner } from '../exec/runner.js';

/** [major, minor]: all that the rules vfwire follows distinguish. */
export type Version = [number, number];

export function atLeast(v: Version, min: Version): boolean {
  return v[0] !== min[0] ? v[0] > min[0] : v[1] >= min[1];
}

/** "6.12.57+deb12-amd64" -> [6, 12]. */
export function parseKernelRelease(text: string): Version {
  const m = /^(\d+)\.(\d+)/.exec(text.trim());
  if (!m) throw new ValidationError(`cannot read a kernel version from "${text.trim().slice(0, 80)}"`);
  return [Number(m[1]), Number(m[2])];
}

/** `ip -V`: "ip utility, iproute2-6.15.0, libbpf 1.1.2", or "iproute2-ss161212" before 4.x. */
export function parseIproute2Version(text: string): Version {
  const m = /iproute2-(\d+)\.(\d+)/.exec(text);
  if (m) return [Number(m[1]), Number(m[2])];
  // Snapshot names are dates, all older than every rule here.
  if (/iproute2-ss\d+/.test(text)) return [0, 0];
  throw new ValidationError(`cannot read an iproute2 version from "${text.trim().split('\n')[0]?.slice(0, 80) ?? ''}"`);
}

export interface HostVersions {
  kernel: Version;
  iproute2: Version;
}

/** The running kernel: the same in every netns, so no command is needed. */
export function runningKernel(): Version {
  return parseKernelRelease(release());
}

export async function probeVersions(runner: Runner): Promise<HostVersions> {
  const { stdout } = await runner.run({ argv: ['ip', '-V'] });
  return { kernel: runningKernel(), iproute2: parseIproute2Version(stdout) };
}
