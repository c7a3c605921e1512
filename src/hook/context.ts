// What every hook handler needs, built once per invocation.

import type { Config } from '../config/config.js';
import type { Runner } from '../exec/runner.js';
import type { Logger } from '../log.js';

export interface HookContext {
  cfg: Config;
  runner: Runner;
  log: Logger;
  /** Test-only: make prepare step N fail (VFWIRE_TEST_FAIL_STEP). */
  failAt?: number;
  /** Test-only: hang before prepare step N, to be killed there (VFWIRE_TEST_HANG_STEP). */
  hangAt?: number;
}
