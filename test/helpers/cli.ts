// Runs the built CLI as a user would.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');

export async function vfwire(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const res = await execa('node', [CLI, ...args], { reject: false, timeout: 60_000, env });
  return { code: res.exitCode ?? -1, stdout: res.stdout, stderr: res.stderr };
}
