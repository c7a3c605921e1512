// What the hook handlers need, each built at most once per invocation and only when needed.

import type { Config } from '../config/config.js';
import type { Runner } from '../exec/runner.js';
import type { Logger } from '../log.js';

/** The config alone (cheap), or the whole context (adds the log and the runner). */
export interface HookEnv {
  config(): Promise<Config>;
  context(): Promise<HookContext>;
  /** The state directory hooks/qemu looks for VM markers in ($VFWIRE_STATE_DIR), when pinned. */
  pinnedStateDir?: string;
}

export interface HookContext {
  cfg: Config;
  runner: Runner;
  log: Logger;
  /** The runner a start's plan steps go through, when not `runner` (the sim tests' FaultRunner). */
  stepRunner?: Runner;
}
