// What every IPsec operation (up, down, rotate, watch, both modes) is given, and what it reports.

import type { Config } from '../config/config.js';
import type { Runner } from '../exec/runner.js';
import type { Step } from '../exec/step.js';
import type { Logger } from '../log.js';

export interface IpsecDeps {
  cfg: Config;
  runner: Runner;
  log: Logger;
}

/** One line of an operation's report: per peer (or TC_RULES), what happened, or the steps a dry run plans. */
export type PeerOutcome = { peer: string; result: string; steps?: Step[] };

/** The outcome line of the tc-flower rules that an `ipsec up|down` took down or brought back. */
export const TC_RULES = 'tc-flower rules';
