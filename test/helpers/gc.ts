// gc as `vfwire gc --grace 0` runs it on a host whose libvirt runs no domain (the sim without
// libvirt, the kernel lab): its lines back, one per finding and the outcome.

import type { Config } from '../../src/config/config.js';
import type { Runner } from '../../src/exec/runner.js';
import { collectGarbage } from '../../src/gc/collect.js';
import { closeLogger, createLogger } from '../../src/log.js';

export async function gcNoDomains(cfg: Config, runner: Runner): Promise<string[]> {
  const said: string[] = [];
  const log = createLogger(cfg.logDir, 'gc');
  try {
    await collectGarbage(cfg, { runner, log }, { running: new Set(), graceMs: 0 }, (l) => said.push(l));
  } finally {
    await closeLogger(log);
  }
  return said;
}
