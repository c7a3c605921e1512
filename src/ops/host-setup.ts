// Host setup: the lab notes' per-boot steps for each PF (and the VF LAG bond with failover),
// reading the host first and changing only what differs, so a second run changes nothing.
// Refused while VFs are leased: it may re-create them.

import { type Config, configPath, loadConfig, underlayNetns } from '../config/config.js';
import { ResourceError, VfwireError } from '../errors.js';
import { applySteps } from '../exec/apply.js';
import { ExecRunner, type Runner } from '../exec/runner.js';
import { readLedger } from '../ledger/store.js';
import { closeLogger, createLogger, type Logger } from '../log.js';
import { overlayFor } from '../overlay/overlay.js';
import type { Step } from '../exec/step.js';
import { readHostState, wantedPfs, type PfSetup } from '../host/host-state.js';
import { readInventory } from '../host/inventory.js';
import { pciAddressOf } from '../host/sysfs-read.js';
import { planHostSetup } from '../plan/host-setup.js';

export interface HostSetupResult {
  steps: Step[];
  /** A dry run that would create VFs: their representors are known only once udev named them. */
  repsLater?: string;
}

/**
 * Plans (and unless `dryRun`, applies) what differs, in two passes. The first brings the PFs,
 * the eswitch, the VFs and the underlay in line; representors appear with new VFs and udev
 * renames them asynchronously, so the second pass waits for udev (`udevadm settle`), finds each
 * VF's representor as the inventory does (phys_port_name pf<N>vf<i> on the PF's phys_switch_id),
 * never by a guessed name, and brings those up at the VF MTU.
 */
export async function hostSetup(
  path: string,
  dryRun: boolean,
  runnerFor: (cfg: Config) => Runner = (cfg) => new ExecRunner(cfg.commandTimeoutMs),
): Promise<HostSetupResult> {
  const cfg = await loadConfig(configPath(path));
  const runner = runnerFor(cfg);
  const ledger = await readLedger(cfg.stateDir);
  const leased = Object.keys(ledger.leases).length;
  if (leased && !dryRun)
    throw new ResourceError(
      `host setup: ${leased} VF(s) are leased; it may re-create VFs, so stop those VMs first (vfwire status)`,
    );
  // The PF's netdev lives where the underlay does; a representor elsewhere (the sim's libvirt
  // host keeps taps in the root netns) is vfwire's to bring up at lease time, not host setup's.
  const netns = underlayNetns(cfg);
  const repsHere = (cfg.netns ?? null) === (netns ?? null);
  const pfs = await wantedPfs(cfg, (pf) => pciAddressOf(cfg.sysfsRoot, pf));
  const plan = async (withReps: boolean) => {
    const want = withReps && repsHere ? await withRepresentors(cfg, pfs) : pfs;
    const current = await readHostState(cfg, runner, want, netns);
    current.ipsecActive = Object.keys(ledger.ipsec?.peers ?? {}).length > 0;
    const input = {
      pfs: want,
      underlay: {
        interface: cfg.underlay.interface,
        address: cfg.underlay.address,
        prefixLength: cfg.underlay.prefixLen,
        mtu: cfg.underlay.mtu,
      },
      repMtu: cfg.vfMtu,
      sysfsRoot: cfg.sysfsRoot,
      netns,
      failover: cfg.failover,
    };
    return planHostSetup(input, current);
  };
  const first = await plan(false);
  first.push(...(await overlayFor(cfg).hostSteps(runner)));
  const makesVfs = first.some((st) => st.kind === 'sriov-enable');
  if (dryRun) {
    if (makesVfs)
      return {
        steps: first,
        repsLater: `then, once udev has named the new VFs' representors (udevadm settle), each found by its phys_port_name: ip link set dev <representor> mtu ${cfg.vfMtu} up`,
      };
    return { steps: [...first, ...(await plan(true)).filter(isRepStep)] };
  }
  const log = createLogger(cfg.logDir, 'host', { syslog: cfg.syslog });
  try {
    await applySteps(first, runner);
    if (makesVfs && cfg.backend === 'real') await settleUdev(runner, log);
    const second = await plan(true);
    await applySteps(second, runner);
    const steps = [...first, ...second];
    if (steps.length) log.info('host setup', { steps: steps.map((st) => `${st.kind} ${st.device}`) });
    return { steps };
  } finally {
    await closeLogger(log);
  }
}

const isRepStep = (st: Step) => st.kind === 'rep-link';

/** Each PF's representors, by VF index, as the inventory finds them; refused when a VF has none. */
async function withRepresentors(cfg: Config, pfs: PfSetup[]): Promise<PfSetup[]> {
  const inv = await readInventory(
    cfg.sysfsRoot,
    pfs.map((p) => p.name),
  );
  return pfs.map((pf) => {
    const found = inv.get(pf.name)!;
    const missing = found.vfs.filter((v) => !v.rep).map((v) => v.index);
    if (found.vfs.length !== pf.numVfs || missing.length) {
      throw new VfwireError(
        `host setup: ${pf.name} has ${found.vfs.length} of ${pf.numVfs} VFs${missing.length ? `, VF(s) ${missing.join(', ')} without a representor (no netdev with phys_port_name pf<N>vf<i> on its switch)` : ''}; check the eswitch is in switchdev mode and dmesg, then run host setup again`,
      );
    }
    return { ...pf, reps: found.vfs.map((v) => v.rep!) };
  });
}

// udev names new netdevs asynchronously; without udev (a container) the kernel's names stay.
async function settleUdev(runner: Runner, log: Logger): Promise<void> {
  await runner.run({ argv: ['udevadm', 'settle', '--timeout=60'] }).catch((err: Error) =>
    log.warn('host setup: udevadm settle failed; representors are read as they are named now', {
      error: err.message,
    }),
  );
}
