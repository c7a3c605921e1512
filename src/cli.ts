#!/usr/bin/env node
// vfwire's command line: parses argv and hands each command to src/cli/<name>.ts.

import { Command, Option } from 'commander';
import { DEFAULT_CONFIG_PATH } from './config/config.js';
import { ExitError, oneLine } from './errors.js';
import { benchCommands } from './cli/bench.js';
import { configCommands } from './cli/config.js';
import { doctorCommand } from './cli/doctor.js';
import { DEFAULT_GRACE_S, gcCommand } from './cli/gc.js';
import { hostCommands } from './cli/host.js';
import { ipsecCommands } from './cli/ipsec.js';
import { planCommand } from './cli/plan.js';
import { simCommands } from './cli/sim.js';
import { statusCommand } from './cli/status.js';
import { vmSet, vmShow, vmUnset, type VmSetOptions } from './cli/vm.js';

const program = new Command('vfwire')
  .description('Give libvirt VMs SR-IOV VFs on tenant VXLAN overlays (libvirt qemu hook + tools)')
  .version('0.1.0')
  .addOption(new Option('-c, --config <path>', 'config file').env('VFWIRE_CONFIG').default(DEFAULT_CONFIG_PATH))
  .showHelpAfterError();

const config = () => program.opts<{ config: string }>().config;
/** --config or $VFWIRE_CONFIG when given; undefined when only the default applies (vm commands work without a config). */
const givenConfig = () => (program.getOptionValueSource('config') === 'default' ? undefined : config());

program
  .command('plan')
  .description('print the exact commands a start of VM would run (runs nothing)')
  .argument('<vm>', 'domain name')
  .option('--xml <file>', 'read the domain XML from a file instead of virsh dumpxml')
  .option('--json', 'machine-readable plan')
  .action((vm: string, o: { xml?: string; json?: boolean }) => planCommand(vm, { ...o, config: config() }));

program
  .command('status')
  .description('leases and VNIs on this host')
  .option('--json', 'machine-readable output')
  .action((o: { json?: boolean }) => statusCommand({ ...o, config: config() }));

program
  .command('doctor')
  .description(
    'check every precondition (SR-IOV, switchdev, dmfs, ESP offload, iproute2, IOMMU, hook, SAs) and say the fix',
  )
  .option('--json', 'machine-readable output')
  .action((o: { json?: boolean }) => doctorCommand({ ...o, config: config() }));

program
  .command('gc')
  .description('free leases whose VM is gone and vfwire devices no lease accounts for (after a crash)')
  .option('--dry-run', 'print what would be freed and the exact commands; change nothing')
  .option(
    '--grace <seconds>',
    'leave leases younger than this alone (their VM may still be starting)',
    String(DEFAULT_GRACE_S),
  )
  .action((o: { dryRun?: boolean; grace: string }) =>
    gcCommand({ dryRun: o.dryRun, graceSeconds: Number(o.grace), config: config() }),
  );

const vm = program.command('vm').description("read and write a domain's vfwire metadata");
vm.command('set')
  .description('tag a defined domain with a vfwire interface, or change one (takes effect at its next start)')
  .argument('<vm>', 'domain name')
  .option('--vni <n>', 'VXLAN network identifier, 1..16777215 (required for a new interface)')
  .option('--index <n>', 'interface to set; flags not given keep their value; the next free index adds one', '0')
  .option('--mac <mac>', 'guest MAC (default: stable, derived from the domain UUID)')
  .option('--mtu <n>', 'guest MTU (default: config vf_mtu, bounded by the overlay)')
  .addOption(new Option('--encrypt <mode>', 'inter-host encryption').choices(['required', 'off']))
  .option('--pf <name>', 'lease only from this PF')
  .action((name: string, o: VmSetOptions) => vmSet(name, o, givenConfig()));
vm.command('show')
  .description("print a domain's vfwire interfaces")
  .argument('<vm>', 'domain name')
  .option('--json', 'machine-readable output')
  .action((name: string, o: { json?: boolean }) => vmShow(name, o, givenConfig()));
vm.command('unset')
  .description("remove a domain's vfwire metadata")
  .argument('<vm>', 'domain name')
  .action((name: string) => vmUnset(name, givenConfig()));

configCommands(program, config);
hostCommands(program, config);
ipsecCommands(program, config);
benchCommands(program);
simCommands(program);

try {
  await program.parseAsync();
} catch (err) {
  if (err instanceof ExitError) process.exitCode = err.code;
  else {
    process.stderr.write(`vfwire: ${oneLine(err)}\n`);
    process.exitCode = 1;
  }
}
