// The attach worker: its own process, spawned by the `started` hook, because a hook must not
// call back into libvirt. It attaches each lease of a VM that needs a live device, retrying
// while libvirt still holds the start job, records the attach in the ledger and logs the
// start -> attached latency. When an attach fails it fails closed: the leases are released and,
// unless the config says keep, the VM is destroyed.

import { lockOptions, type Config } from '../config/config.js';
import { oneLine } from '../errors.js';
import type { Runner } from '../exec/runner.js';
import { releaseLocked } from '../ops/release.js';
import { leasesOf } from '../ledger/record.js';
import { readLedger, withLedger } from '../ledger/store.js';
import { needsLiveAttach } from '../ledger/types.js';
import type { Logger } from '../log.js';
import { sleep as realSleep } from '../wait.js';
import { renderDeviceXml } from './device-xml.js';

/** The few libvirt calls the worker makes on one domain. */
export interface LiveDomain {
  attach(xml: string): Promise<void>;
  destroy(): Promise<void>;
  close(): Promise<void>;
}

export type OpenDomain = (uri: string, uuid: string) => Promise<LiveDomain>;

/** libvirt refuses with these while the start job still holds the domain; worth retrying. */
export type IsRetryable = (err: unknown) => boolean;

export interface WorkerDeps {
  cfg: Config;
  log: Logger;
  runner: Runner;
  openDomain: OpenDomain;
  isRetryable: IsRetryable;
  sleep?: (ms: number) => Promise<void>;
}

export async function runAttachWorker(vm: string, uuid: string, startedAt: number, deps: WorkerDeps): Promise<boolean> {
  const { cfg, log } = deps;
  const leases = leasesOf(await readLedger(cfg.stateDir), uuid).filter(
    (l) => l.state === 'active' && needsLiveAttach(l) && !l.attachedAt,
  );
  if (leases.length === 0) return true;
  let dom: LiveDomain | undefined;
  try {
    dom = await deps.openDomain(cfg.libvirtUri, uuid);
    for (const lease of leases) {
      await attachWithRetry(dom, renderDeviceXml(lease), startedAt + cfg.attachTimeoutMs, deps);
      const at = new Date();
      await withLedger(
        cfg.stateDir,
        async (txn) => {
          const l = txn.data.leases[lease.key];
          if (!l) return;
          l.attachedAt = at.toISOString();
          await txn.save();
        },
        lockOptions(cfg),
      );
      // The MTU is for the guest to set on its VF (README: the guest's MTU).
      log.info('attached', {
        vm,
        uuid,
        index: lease.index,
        pci: lease.pci,
        rep: lease.rep,
        mtu: lease.mtu,
        ms: at.getTime() - startedAt,
      });
    }
    return true;
  } catch (err) {
    log.error('attach failed', { vm, uuid, error: oneLine(err), policy: cfg.onAttachFailure });
    await failClosed(vm, uuid, dom, deps);
    return false;
  } finally {
    await dom?.close().catch(() => undefined);
  }
}

async function attachWithRetry(dom: LiveDomain, xml: string, deadline: number, deps: WorkerDeps): Promise<void> {
  const sleep = deps.sleep ?? realSleep;
  // The start job ends at a moment nobody announces: poll often (a refused attach is one local
  // RPC), or the VF lands up to the last backoff after the job is done.
  for (let delay = 25; ; delay = Math.min(delay * 2, 100)) {
    try {
      return await dom.attach(xml);
    } catch (err) {
      if (!deps.isRetryable(err) || Date.now() + delay > deadline) throw err;
      await sleep(delay);
    }
  }
}

// Stop first, then release: the VM must not run on while its VF's overlay is being torn down.
// The stop hooks release too; releasing here as well covers `keep` and a failed destroy.
async function failClosed(vm: string, uuid: string, dom: LiveDomain | undefined, deps: WorkerDeps): Promise<void> {
  const { cfg, log } = deps;
  if (cfg.onAttachFailure === 'stop' && dom) {
    await dom.destroy().then(
      () => log.warn('stopped the VM: its VF could not be attached (on_attach_failure: stop)', { vm, uuid }),
      (err: unknown) => log.error('could not stop the VM after a failed attach', { vm, uuid, error: oneLine(err) }),
    );
  }
  await withLedger(
    cfg.stateDir,
    (txn) => releaseLocked(txn, uuid, vm, { runner: deps.runner, log }),
    lockOptions(cfg),
  ).catch((err: unknown) => log.error('could not release after a failed attach', { vm, uuid, error: oneLine(err) }));
}
