// `vfwire host setup [--dry-run]`: the lab notes' per-boot steps for each PF (and the VF LAG bond
// with failover), reading the host first and changing only what differs, so a second run
// changes nothing. Refused while VFs are leased: it may re-create them.

import { realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import { configPath, loadConfig, type Config } from '../config/config.js';
import { ResourceError } from '../errors.js';
import { applySteps } from '../exec/apply.js';
import { ExecRunner, type Runner } from '../exec/runner.js';
import { ip } from '../exec/tools.js';
import { maxGuestMtu } from '../overlay/mtu.js';
import { hasIngressQdisc, parseTcHostLink, planTcHost, tc, TC_VXLAN_DEVICE } from '../overlay/tc-flower.js';
import { planHostSetup } from '../failover/vf-lag.js';
import { readHostState, wantedPfs } from '../host/host-state.js';
import { readLedger } from '../ledger/store.js';
import { closeLogger, createLogger } from '../log.js';
import { formatCommandWithInput, type Step } from '../plan/step.js';
import { SimDevlinkRunner } from '../sim/devlink-emulator.js';

export function hostCommands(program: Command, config: () => string): void {
  const host = program.command('host').description('per-boot host configuration');
  host
    .command('setup')
    .description("SR-IOV, dmfs, switchdev, VFs, underlay address and MTUs as the lab notes set them; only what differs")
    .option('--dry-run', 'print the exact commands and change nothing')
    .action(async (o: { dryRun?: boolean }) => {
      const steps = await hostSetup(config(), o.dryRun ?? false);
      if (steps.length === 0) console.log('host is set up: nothing to change');
      // sysfs writes show the value they write; host setup has no secrets.
      else if (o.dryRun) for (const s of steps) console.log(formatCommandWithInput(s.do));
      else console.log(`host setup: ${steps.length} change(s) made`);
    });
}

export async function hostSetup(path: string, dryRun: boolean): Promise<Step[]> {
  const cfg = await loadConfig(configPath(path));
  const exec = new ExecRunner(cfg.commandTimeoutMs);
  const runner = cfg.backend === 'sim' ? new SimDevlinkRunner(cfg.sysfsRoot, exec) : exec;
  const ledger = await readLedger(cfg.stateDir);
  const leased = Object.keys(ledger.leases).length;
  if (leased && !dryRun) throw new ResourceError(`host setup: ${leased} VF(s) are leased; it may re-create VFs, so stop those VMs first (vfwire status)`);
  // The PF's netdev lives where the underlay does; a representor elsewhere (the sim's libvirt
  // host keeps taps in the root netns) is vfwire's to bring up at lease time, not host setup's.
  const netns = cfg.underlay.netns ?? cfg.netns;
  const repsHere = (cfg.netns ?? null) === (netns ?? null);
  const pfs = (await wantedPfs(cfg, async (pf) => basename(await realpath(join(cfg.sysfsRoot, 'class/net', pf, 'device'))))).map((p) => (repsHere ? p : { ...p, reps: [] }));
  const current = await readHostState(cfg, runner, pfs, netns);
  current.ipsecActive = Object.keys(ledger.ipsec?.peers ?? {}).length > 0;
  const steps = planHostSetup(
    { pfs, underlay: { interface: cfg.underlay.interface, address: cfg.underlay.address, prefixLength: cfg.underlay.prefixLen, mtu: cfg.underlay.mtu }, repMtu: cfg.vfMtu, sysfsRoot: cfg.sysfsRoot, netns, failover: cfg.failover },
    current,
  );
  if (cfg.overlay === 'tc-flower') steps.push(...(await tcFlowerHostSteps(cfg, runner)));
  if (dryRun || steps.length === 0) return steps;
  const log = createLogger(cfg.logDir, 'host');
  try {
    await applySteps(steps, runner);
    log.info('host setup', { steps: steps.map((s) => `${s.kind} ${s.device}`) });
  } finally {
    await closeLogger(log);
  }
  return steps;
}

// The tc-flower overlay's one external VXLAN device and its ingress qdisc are host state.
async function tcFlowerHostSteps(cfg: Config, runner: Runner): Promise<Step[]> {
  const host = { netns: cfg.netns, underlayAddress: cfg.underlay.address };
  const link = await runner.run({ argv: ip(cfg.netns, '-j', '-d', 'link', 'show', 'dev', TC_VXLAN_DEVICE) }).catch(() => undefined);
  const qdisc = link ? await runner.run({ argv: tc(cfg.netns, '-j', 'qdisc', 'show', 'dev', TC_VXLAN_DEVICE) }).catch(() => undefined) : undefined;
  const state = { vxlan: link ? parseTcHostLink(link.stdout) : null, ingressQdisc: qdisc ? hasIngressQdisc(qdisc.stdout, TC_VXLAN_DEVICE) : false };
  return planTcHost(host, maxGuestMtu(cfg.underlay.mtu, cfg.ipsec.mode !== 'off'), state);
}

