// `vfwire host setup [--dry-run]`: the lab notes' per-boot steps (ops/host-setup.ts).

import { hostRunner } from './host-runner.js';
import type { Command } from 'commander';
import { hostSetup } from '../ops/host-setup.js';
import { formatCommandWithInput } from '../exec/step.js';

export function hostCommands(program: Command, config: () => string): void {
  const host = program.command('host').description('per-boot host configuration');
  host
    .command('setup')
    .description('SR-IOV, dmfs, switchdev, VFs, underlay address and MTUs as the lab notes set them; only what differs')
    .option('--dry-run', 'print the exact commands and change nothing')
    .action(async (o: { dryRun?: boolean }) => {
      const { steps, repsLater } = await hostSetup(config(), o.dryRun ?? false, hostRunner);
      if (steps.length === 0) console.log('host is set up: nothing to change');
      // sysfs writes show the value they write; host setup has no secrets.
      else if (o.dryRun) for (const s of steps) console.log(formatCommandWithInput(s.do));
      else console.log(`host setup: ${steps.length} change(s) made`);
      if (repsLater) console.log(`# ${repsLater}`);
    });
}
