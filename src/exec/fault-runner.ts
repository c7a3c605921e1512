// The sim tests' fault injection: a runner that fails, or hangs, at its Nth command. Wrapped
// around the runner a start's plan steps go through (hook/invoke.ts, sim backend only), where
// command N is step N, it proves rollback and crash recovery at every step.

import { VfwireError } from '../errors.js';
import type { Command } from './step.js';
import type { Runner, RunResult } from './runner.js';

export interface Faults {
  /** This command (0-based) fails without running (VFWIRE_TEST_FAIL_STEP). */
  failAt?: number;
  /** Before this command (0-based) the runner hangs until the process is killed (VFWIRE_TEST_HANG_STEP). */
  hangAt?: number;
  /** Told once the runner hangs, so a test kills the process at that step and not before it. */
  onHang?: (command: number) => void;
}

export class FaultRunner implements Runner {
  #count = 0;

  constructor(
    private readonly inner: Runner,
    private readonly faults: Faults,
  ) {}

  async run(cmd: Command): Promise<RunResult> {
    const i = this.#count++;
    if (i === this.faults.failAt) throw new VfwireError(`injected failure at command ${i} (VFWIRE_TEST_FAIL_STEP)`);
    if (i === this.faults.hangAt) {
      this.faults.onHang?.(i);
      await new Promise(() => setInterval(() => undefined, 60_000));
    }
    return this.inner.run(cmd);
  }
}
