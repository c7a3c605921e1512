// libvirt's qemu hook: `<hook> <vm> <operation> <sub-operation> <extra>` with the domain XML on
// stdin. Maps each operation to its handler and decides the exit code libvirt acts on.
// Hooks must never call back into libvirt (it holds locks while they run).

import path from 'node:path';
import type { Config } from '../config/config.js';
import { ValidationError, VfwireError } from '../errors.js';
import { installerName, rerenderCommand } from '../installer.js';
import { needsLiveAttach, type Lease } from '../ledger/types.js';
import type { HookEnv } from './context.js';

// Handlers load on demand: libvirt runs this for every operation of every tagged VM, and most
// operations (start, stopped/begin, ...) need none of them.
const domain = () => import('../domain/parse-domain.js');
const identity = () => import('../domain/domain-identity.js');

export interface HookCall {
  vm: string;
  op: string;
  subOp: string;
  xml: string;
}

/** Runs one hook call; a thrown error means "refuse" (non-zero exit, one line on stderr). */
export async function dispatch(call: HookCall, env: HookEnv): Promise<void> {
  const when = `${call.op}/${call.subOp}`;
  switch (when) {
    case 'prepare/begin': {
      const req = (await domain()).parseDomainXml(call.xml);
      if (!req.interfaces) return;
      checkPinnedStateDir(await env.config(), env.pinnedStateDir);
      await (await import('./prepare.js')).prepare(req, await env.context());
      return;
    }
    case 'started/begin':
      // QEMU runs; the start job is still libvirt's. A separate worker attaches the devices.
      // Too late to refuse the start: without its attach the VM just has no VF; say so.
      return logFailure(env, call, 'started: could not start the attach worker', async () => {
        const { uuid, name } = (await identity()).readDomainIdentity(call.xml);
        const pending = (await leasesOfVm(env, uuid)).filter(needsLiveAttach);
        if (pending.length === 0) return;
        const c = await env.context();
        const { spawnAttachWorker } = await import('../attach/spawn.js');
        c.log.info('attach worker started', {
          vm: name,
          uuid,
          pid: spawnAttachWorker(c.cfg.path, name, uuid, Date.now()),
        });
      });
    case 'release/end': {
      // Release by UUID even when the metadata is gone or broken: the ledger knows what it holds.
      // Here, not at stopped/end: libvirt's qemuProcessStop runs both, and release once the VF is
      // back on its host driver. hooks/qemu comes here only for a VM with a marker.
      const { uuid, name } = (await identity()).readDomainIdentity(call.xml);
      if ((await leasesOfVm(env, uuid)).length) {
        const ctx = await env.context();
        await (await import('../ops/release.js')).release(ctx.cfg, uuid, name, ctx);
      }
      return;
    }
    case 'reconnect/begin':
      // libvirt kills the running QEMU when this hook fails: never fail here.
      return logFailure(env, call, 'reconnect: could not re-adopt leases', async () => {
        const { uuid, name } = (await identity()).readDomainIdentity(call.xml);
        if ((await leasesOfVm(env, uuid)).length)
          await (await import('./reconnect.js')).readopt(uuid, name, await env.context());
      });
    case 'migrate/begin':
    case 'restore/begin': {
      const req = (await domain()).parseDomainXml(call.xml);
      if (req.interfaces)
        throw new VfwireError(
          `${call.op} of a VM with a vfwire VF is not supported (its VF cannot move with it); stop the VM and start it on the target host instead`,
          { vm: req.name },
        );
      return;
    }
    default:
      // start, stopped, attach... nothing to do.
      return;
  }
}

/**
 * hooks/qemu looks for the VM markers in the state directory its installer pinned: a lease taken in
 * another would be one whose release the shim never sees. So a start refuses when they differ.
 */
function checkPinnedStateDir(cfg: Config, pinned: string | undefined): void {
  if (pinned === undefined || path.resolve(pinned) === path.resolve(cfg.stateDir)) return;
  const by = process.env.VFWIRE_INSTALLED_BY;
  throw new ValidationError(
    `${cfg.path}: state_dir is ${cfg.stateDir} but the hook looks for leases in ${pinned} (VFWIRE_STATE_DIR, pinned by ${installerName(by)}): ${rerenderCommand(by)}, or put state_dir back`,
  );
}

/** A VM's leases from a lock-free read of the ledger: the cheap test before anything heavier. */
async function leasesOfVm(env: HookEnv, uuid: string): Promise<Lease[]> {
  const [cfg, { leasesOf }, { readLedger }] = await Promise.all([
    env.config(),
    import('../ledger/record.js'),
    import('../ledger/store.js'),
  ]);
  return leasesOf(await readLedger(cfg.stateDir), uuid);
}

// For the calls libvirt must not see fail: the error goes to the log, the call succeeds.
async function logFailure(env: HookEnv, call: HookCall, what: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    (await env.context()).log.error(what, { vm: call.vm, error: (err as Error).message });
  }
}
