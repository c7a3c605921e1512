// Host setup: the lab notes' per-boot steps for each PF (and the VF LAG bond with failover),
// reading the host first and changing only what differs, so a second run changes nothing.
// Refused while VFs are leased: it may re-create them.

import { type Config, configPath, loadConfig, underlayNetns } from '../config/config.js';
import { ResourceError } from '../errors.js';
import { applySteps } from '../exec/apply.js';
import type { Runner } from '../exec/runner.js';
import { ip, tc } from '../exec/tools.js';
import { planHostSetup } from '../failover/vf-lag.js';
import { readLedger } from '../ledger/store.js';
import { closeLogger, createLogger } from '../log.js';
import { maxGuestMtu } from '../overlay/mtu.js';
import { hasIngressQdisc, parseTcHostLink, planTcHost, TC_VXLAN_DEVICE } from '../overlay/tc-flower.js';
import type { Step } from '../plan/step.js';
import { hostRunner } from './host-runner.js';
import { readHostState, wantedPfs } from './host-state.js';
import { pciAddressOf } from './sysfs-read.js';

/** Plans (and unless `dryRun`, applies) what differs; returns the steps. */
export async function hostSetup(path: string, dryRun: boolean): Promise<Step[]> {
  const cfg = await loadConfig(configPath(path));
  const runner = hostRunner(cfg);
  const ledger = await readLedger(cfg.stateDir);
  const leased = Object.keys(ledger.leases).length;
  if (leased && !dryRun) throw new ResourceError(`host setup: ${leased} VF(s) are leased; it may re-create VFs, so stop those VMs first (vfwire status)`);
  // The PF's netdev lives where the underlay does; a representor elsewhere (the sim's libvirt
  // host keeps taps in the root netns) is vfwire's to bring up at lease time, not host setup's.
  const netns = underlayNetns(cfg);
  const repsHere = (cfg.netns ?? null) === (netns ?? null);
  const pfs = (await wantedPfs(cfg, (pf) => pciAddressOf(cfg.sysfsRoot, pf))).map((p) => (repsHere ? p : { ...p, reps: [] }));
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

