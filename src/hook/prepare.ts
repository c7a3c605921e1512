// prepare/begin: lease VFs and program them. Under the host-wide lock the leases are recorded,
// with the undo of every step, before the first command runs, and the steps that touch shared
// state (a VNI, the host) run; the lease's own trailing steps run after the lock is let go
// (plan/unlocked-steps.ts), and a last short lock marks the leases active. A failure anywhere
// gives everything back; a crash anywhere leaves a 'preparing' lease whose undo covers it all.

import { lockOptions, underlayNetns } from '../config/config.js';
import type { DomainRequest } from '../domain/interface-spec.js';
import { ResourceError, ValidationError } from '../errors.js';
import { hotplugShortfall } from '../domain/hotplug-slots.js';
import { hasEspOffload } from '../host/esp-offload.js';
import { peersOf } from '../plan/peers.js';
import { applySteps } from '../exec/apply.js';
import { readInventory } from '../host/inventory.js';
import { readVfAdminMacs } from '../host/vf-admin-macs.js';
import { dropLeases, markActive, recordPeerUpdates, recordPlan } from '../ledger/record.js';
import { withLedger, type LedgerTxn } from '../ledger/store.js';
import { planPrepare } from '../plan/prepare.js';
import type { HookContext } from './context.js';
import { releaseKeysLocked, releaseLocked } from '../ops/release.js';
import { overlayFor } from '../overlay/overlay.js';
import { leaseUndoIn, splitUnlocked } from '../plan/unlocked-steps.js';
import type { Logger } from '../log.js';

export async function prepare(req: DomainRequest, ctx: HookContext): Promise<void> {
  const { cfg, log } = ctx;
  const t0 = performance.now();
  await checkEncryptedPath(req, ctx);
  const steps = ctx.stepRunner ?? ctx.runner;
  // Batched, except under fault injection, whose Nth command must be step N.
  const applyOpts = { vm: req.name, batch: !ctx.stepRunner };
  const lock = lockOptions(cfg);
  const { plan, keys, locked, unlocked } = await withLedger(
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
      const { locked, unlocked } = splitUnlocked(plan.steps, overlayFor(cfg).ownStepsUnlocked);
      recordPlan(txn.data, plan);
      await txn.save();
      try {
        await applySteps(locked, steps, applyOpts);
      } catch (err) {
        dropLeases(txn.data, keys);
        await saveAfterFailure(txn, req.name, log);
        throw err;
      }
      recordPeerUpdates(txn.data, plan);
      if (unlocked.length === 0) markActive(txn.data, keys);
      await txn.save();
      return { plan, keys, locked, unlocked };
    },
    lock,
  );
  if (unlocked.length) {
    // The lease's own steps, with the lock free for the next start (plan/unlocked-steps.ts).
    try {
      await applySteps(unlocked, steps, applyOpts);
    } catch (err) {
      // They undid themselves; what ran under the lock goes as a release does, from the
      // ledger as it is now (another start may have joined a VNI this one made).
      await withLedger(
        cfg.stateDir,
        async (txn) => {
          for (const key of keys) {
            const lease = txn.data.leases[key];
            if (lease) lease.undo = leaseUndoIn(locked, key);
          }
          await releaseKeysLocked(txn, keys, req.name, { runner: steps, log }, req.uuid);
        },
        lock,
      ).catch((releaseErr: unknown) =>
        log.error('could not release the failed leases (vfwire gc will)', {
          vm: req.name,
          error: (releaseErr as Error).message,
        }),
      );
      throw err;
    }
    await withLedger(
      cfg.stateDir,
      async (txn) => {
        // Only `vfwire gc --grace 0` run mid-start takes a 'preparing' lease: then this start has no VF.
        const gone = keys.filter((k) => !txn.data.leases[k]);
        if (gone.length)
          throw new ResourceError(`lease ${gone.join(', ')} was released while the start ran (by vfwire gc?)`, {
            vm: req.name,
          });
        markActive(txn.data, keys);
        await txn.save();
      },
      lock,
    );
  }
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
  log.info('prepared', {
    vm: req.name,
    steps: plan.steps.length,
    unlocked: unlocked.length,
    ms: Math.round(performance.now() - t0),
  });
}

// The step's failure is what the user must see; a failed save is logged beside it.
async function saveAfterFailure(txn: LedgerTxn, vm: string, log: Logger): Promise<void> {
  await txn.save().catch((saveErr: unknown) =>
    log.error('could not drop the failed leases from the ledger (vfwire gc will)', {
      vm,
      error: (saveErr as Error).message,
    }),
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
