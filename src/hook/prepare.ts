// prepare/begin: lease VFs and program them, under the host-wide lock. The leases are recorded
// before the first command runs and removed again if any step fails, so neither a failure nor a
// crash in between can leak a VF without a trace in the ledger.

import { underlayNetns } from '../config/config.js';
import type { DomainRequest } from '../domain/interface-spec.js';
import { ValidationError } from '../errors.js';
import { hotplugShortfall } from '../domain/hotplug-slots.js';
import { hasEspOffload } from '../host/esp-offload.js';
import { peersOf } from '../plan/peers.js';
import { applySteps } from '../exec/apply.js';
import { readInventory } from '../host/inventory.js';
import { readVfAdminMacs } from '../host/vf-admin-macs.js';
import { dropLeases, markActive, recordPeerUpdates, recordPlan } from '../ledger/record.js';
import { withLedger } from '../ledger/store.js';
import { planPrepare } from '../plan/prepare.js';
import type { HookContext } from './context.js';
import { releaseLocked } from '../ops/release.js';

export async function prepare(req: DomainRequest, ctx: HookContext): Promise<void> {
  const { cfg, log } = ctx;
  const t0 = performance.now();
  await checkEncryptedPath(req, ctx);
  await withLedger(
    cfg.stateDir,
    async (txn) => {
      // Leases of an earlier boot, then of an earlier start that never reached release, go first.
      await releaseLocked(txn, req.uuid, req.name, ctx);
      const inv = await readInventory(
        cfg.sysfsRoot,
        cfg.pfs.map((p) => p.name),
      );
      if (cfg.backend === 'real') await readVfAdminMacs(ctx.runner, cfg.netns, inv);
      const plan = planPrepare(req, inv, txn.data, cfg);
      // Before anything is recorded: a VM whose later attach would find no slot never starts.
      const live = plan.leases.filter((l) => l.attach !== 'netns').length;
      const short = hotplugShortfall(req.slots, live, req.name);
      if (short) throw new ValidationError(short, { vm: req.name });
      const keys = plan.leases.map((l) => l.key);
      recordPlan(txn.data, plan);
      await txn.save();
      try {
        // Batched, except under fault injection, whose Nth command must be step N.
        await applySteps(plan.steps, ctx.stepRunner ?? ctx.runner, { vm: req.name, batch: !ctx.stepRunner });
      } catch (err) {
        dropLeases(txn.data, keys);
        // The step's failure is what the user must see; a failed save is logged beside it.
        await txn.save().catch((saveErr: unknown) =>
          log.error('could not drop the failed leases from the ledger (vfwire gc will)', {
            vm: req.name,
            error: (saveErr as Error).message,
          }),
        );
        throw err;
      }
      recordPeerUpdates(txn.data, plan);
      markActive(txn.data, keys);
      await txn.save();
      for (const l of plan.leases) {
        log.info('leased', {
          vm: l.vm,
          uuid: l.uuid,
          index: l.index,
          pf: l.pf,
          vf: l.vf,
          pci: l.pci,
          rep: l.rep,
          vni: l.vni,
          mac: l.mac,
          mtu: l.mtu,
        });
      }
      log.info('prepared', { vm: req.name, steps: plan.steps.length, ms: Math.round(performance.now() - t0) });
    },
    { timeoutMs: cfg.lockTimeoutMs },
  );
}

// Fail closed: a VM that requires encryption starts only on an encrypted path: with IKEv2, its
// peers' CHILD_SAs are INSTALLED; and the NIC encrypts (or, only when the config says so, the
// CPU). Checked before the lock: it reads the kernel and strongSwan, not the ledger.
async function checkEncryptedPath(req: DomainRequest, { cfg, runner }: HookContext): Promise<void> {
  if (cfg.ipsec.mode === 'off') return;
  const encrypted = (req.interfaces ?? []).filter((i) => i.encrypt === 'required');
  const peers = [...new Map(encrypted.flatMap((i) => peersOf(cfg, i.vni)).map((p) => [p.name, p])).values()];
  if (peers.length === 0) return;
  if (cfg.ipsec.mode === 'ikev2') {
    // Only IKEv2 hosts load strongSwan's side of vfwire.
    const { checkIkeChildren } = await import('../ipsec/ikev2.js');
    const missing = await checkIkeChildren(cfg, runner, peers);
    if (missing.length)
      throw new ValidationError(
        `encrypt: required, but these strongSwan CHILD_SAs are not INSTALLED: ${missing.join(', ')} (see swanctl --list-sas; vfwire ipsec up)`,
        { vm: req.name },
      );
  }
  // offload: none is the operator's explicit choice of CPU crypto; the others need the NIC.
  const uplink = cfg.underlay.interface;
  if (cfg.ipsec.offload !== 'none' && !(await hasEspOffload(runner, underlayNetns(cfg), uplink))) {
    throw new ValidationError(
      `encrypt: required, but ${uplink} has no ESP offload (ethtool -k ${uplink}: esp-hw-offload is not on; see vfwire doctor); ` +
        `set ipsec.offload: none in ${cfg.path} to accept CPU crypto`,
      { vm: req.name },
    );
  }
}
