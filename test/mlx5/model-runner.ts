// vfwire's own Runner in front of the mlx5 model: the real orchestration code (ipsec up, down,
// watch) runs its commands against the model as against a host. A refusal comes back as the
// error ExecRunner would raise (ENOENT/ESRCH as NotFoundError); what the model does not know
// fails the test loudly. `ip -V` and the peer kick (a datagram, no NIC state) are answered here.

import { NotFoundError } from '../../src/errors.js';
import { CommandError, type Runner, type RunResult } from '../../src/exec/runner.js';
import { formatCommand, type Command } from '../../src/exec/step.js';
import type { Mlx5Host } from './model.js';
import { Mlx5Refusal, UnmodeledCommand } from './refusal.js';

export class ModelRunner implements Runner {
  readonly kicks: string[] = [];
  constructor(
    private readonly host: Mlx5Host,
    private readonly iproute2 = '6.15.0',
  ) {}

  async run(cmd: Command): Promise<RunResult> {
    if (cmd.argv.join(' ') === 'ip -V') return { stdout: `ip utility, iproute2-${this.iproute2}`, stderr: '' };
    if (cmd.argv[0] === process.execPath && cmd.argv[1]?.endsWith('kick-main.js')) {
      this.kicks.push(cmd.argv.slice(2).join(' '));
      return { stdout: '', stderr: '' };
    }
    try {
      return { stdout: this.host.run(cmd), stderr: '' };
    } catch (e) {
      if (e instanceof UnmodeledCommand) throw new Error(`${formatCommand(cmd)}: ${e.message}`);
      if (!(e instanceof Mlx5Refusal)) throw e;
      const message = `${formatCommand(cmd)}: exit code ${e.exitCode}: ${e.stderr}`;
      throw e.errno === 'ENOENT' || e.errno === 'ESRCH' ? new NotFoundError(message) : new CommandError(message);
    }
  }
}
