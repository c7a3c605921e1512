// gc under the ledger lock, once the caller has asked libvirt which domains run: free the stale
// leases and what no lease accounts for (plan-gc.ts decides; this reads the host and runs it).
// The lab calls it as `vfwire gc` does, with no libvirt in its VM.

import { lockOptions, vxlanSocketNetns, type Config } from '../config/config.js';
import { undoRelease } from '../ops/release.js';
import type { Runner } from '../exec/runner.js';
import { formatCommand } from '../exec/step.js';
import { ip } from '../exec/tools.js';
import { planGc, type HostLink } from './plan-gc.js';
import { readBootId } from '../host/boot-id.js';
import { readInventory } from '../host/inventory.js';
import { poolRepresentors } from '../host/pool.js';
import { dropLeases, forgetEarlierBoot } from '../ledger/record.js';
import { withLedger } from '../ledger/store.js';
import type { Logger } from '../log.js';
import { readAdmission } from '../overlay/admission.js';
import { overlayFor } from '../overlay/overlay.js';

export interface GcRun {
  /** UUIDs of the domains libvirt runs. */
  running: Set<string>;
  /** vfwire device aliases in each running domain's live XML (gc/plan-gc.ts GcInput.liveAliases). */
  liveAliases?: Map<string, Set<string>>;
  /** Leases younger than this many ms are left alone. */
  graceMs: number;
  dryRun?: boolean;
}

/** Runs gc, telling each finding and the outcome to `say`, one line each. */
export async function collectGarbage(
  cfg: Config,
  deps: { runner: Runner; log: Logger },
  run: GcRun,
  say: (line: string) => void,
): Promise<void> {
  const { runner, log } = deps;
  await withLedger(
    cfg.stateDir,
    async (txn) => {
      if (!run.dryRun && forgetEarlierBoot(txn.data, await readBootId())) await txn.save();
      const admission = {
        netns: vxlanSocketNetns(cfg),
        vnis: [...(await readAdmission(runner, vxlanSocketNetns(cfg))).vnis.keys()],
      };
      const plan = planGc({
        ledger: txn.data,
        running: run.running,
        links: await hostLinks(cfg, runner),
        notBefore: new Date(Date.now() - run.graceMs),
        liveAliases: run.liveAliases,
        admission,
        overlayLeftovers: await overlayFor(cfg).leftovers(runner, txn.data, await poolReps(cfg)),
      });
      for (const l of plan.staleLeases) say(`lease ${l.vm}#${l.key.split('/')[1]}: ${l.why}`);
      for (const line of plan.leftovers) say(`leftover ${line}`);
      if (plan.commands.length === 0) return say('nothing to collect');
      if (run.dryRun) {
        say('would run:');
        for (const c of plan.commands) say(`  ${formatCommand(c)}`);
        return;
      }
      const errors = await undoRelease(plan.commands, runner);
      dropLeases(
        txn.data,
        plan.staleLeases.map((l) => l.key),
      );
      await txn.save();
      log.info('gc', {
        released: plan.staleLeases.map((l) => l.key),
        leftovers: plan.leftovers,
        failed: errors.map((e) => e.message),
      });
      for (const e of errors) say(`failed: ${e.message}`);
      say(`released ${plan.staleLeases.length} lease(s), removed ${plan.leftovers.length} leftover(s)`);
    },
    lockOptions(cfg),
  );
}

async function poolReps(cfg: Config): Promise<string[]> {
  const inv = await readInventory(
    cfg.sysfsRoot,
    cfg.pfs.map((p) => p.name),
  );
  return poolRepresentors(inv, cfg.pfs);
}

/** Links of the host netns and, where the VXLAN devices are made elsewhere, of the underlay's. */
async function hostLinks(cfg: Config, runner: Runner): Promise<HostLink[]> {
  const spaces = [...new Set([cfg.netns, cfg.underlay.netns])];
  const out: HostLink[] = [];
  for (const netns of spaces) {
    const { stdout } = await runner.run({ argv: ip(netns, '-j', 'link', 'show') });
    for (const l of JSON.parse(stdout) as { ifname: string; master?: string }[])
      out.push({ name: l.ifname, master: l.master, netns });
  }
  return out;
}
