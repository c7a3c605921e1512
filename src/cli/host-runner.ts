// The runner for host commands as the CLI builds it from the config: on a sim host, devlink is
// the sim's (its "NIC" lives in files under the sim's sysfs); everything else runs for real. The
// layers below take a runner and never know which.

import type { Config } from '../config/config.js';
import { ExecRunner, type Runner } from '../exec/runner.js';
import { SimDevlinkRunner } from '../sim/devlink-emulator.js';

export function hostRunner(cfg: Pick<Config, 'backend' | 'sysfsRoot' | 'commandTimeoutMs'>): Runner {
  const exec = new ExecRunner(cfg.commandTimeoutMs);
  return cfg.backend === 'sim' ? new SimDevlinkRunner(cfg.sysfsRoot, exec) : exec;
}
