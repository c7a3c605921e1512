// The eswitch mode of a PF, from devlink. Read by the host checks, not the hook's hot path:
// a start needs representors, which only exist in switchdev mode anyway.

import { VfwireError } from '../errors.js';
import type { Runner } from '../exec/runner.js';

export type EswitchMode = 'legacy' | 'switchdev' | 'switchdev_inactive';

/** `devlink -j dev eswitch show pci/BDF` prints {"dev":{"pci/BDF":{"mode":"switchdev",...}}}. */
export function parseEswitchShow(json: string, pci: string): EswitchMode {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    throw new VfwireError(`devlink eswitch show pci/${pci}: output is not JSON`);
  }
  const mode = (doc as { dev?: Record<string, { mode?: unknown }> }).dev?.[`pci/${pci}`]?.mode;
  if (mode === 'legacy' || mode === 'switchdev' || mode === 'switchdev_inactive') return mode;
  throw new VfwireError(`devlink eswitch show pci/${pci}: no eswitch mode in its output`);
}

export async function readEswitchMode(runner: Runner, pci: string): Promise<EswitchMode> {
  const { stdout } = await runner.run({ argv: ['devlink', '-j', 'dev', 'eswitch', 'show', `pci/${pci}`] });
  return parseEswitchShow(stdout, pci);
}
