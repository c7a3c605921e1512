// `vfwire doctor`: every precondition of the lab setup, each a pass/fail line with the fix.
// Checks only read; none changes the host. Each lives with what it checks; this runs them.

import { fail, pass, type CheckResult } from '../check-result.js';
import type { Config } from '../config/config.js';
import { oneLine } from '../errors.js';
import type { Runner } from '../exec/runner.js';
import { garpToolCheck, lagCheck, pfSwitchCheck } from '../failover/checks.js';
import { pfSwitch } from '../failover/pf-switch.js';
import { bootOrderCheck, readBootOrderFiles } from '../host/boot-order.js';
import { hookCheck, hookPinCheck, installedHook, iommuCheck, pfChecks } from '../host/checks.js';
import { readInventory, type Inventory } from '../host/inventory.js';
import { ipsecChecks } from '../ipsec/checks.js';
import { readLedger } from '../ledger/store.js';
import type { LedgerData } from '../ledger/types.js';
import { admissionCheck } from '../overlay/admission-check.js';
import { overlayFor } from '../overlay/overlay.js';
import { vmSlotsCheck } from '../ops/hotplug-ports.js';

export interface DoctorContext {
  cfg: Config;
  runner: Runner;
  /** Paths of the libvirt hook files to look for; defaults to the system's. */
  hookPaths?: string[];
}

export async function runChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const { cfg, runner } = ctx;
  const results: CheckResult[] = [];
  let ledger: LedgerData | undefined;
  try {
    ledger = await readLedger(cfg.stateDir);
    const counts = `${Object.keys(ledger.leases).length} lease(s), ${Object.keys(ledger.vnis).length} VNI(s)`;
    results.push(pass('ledger', `${cfg.stateDir}: ${counts}`));
  } catch (err) {
    results.push(fail('ledger', oneLine(err), 'move the file aside and run vfwire gc'));
  }
  let inv: Inventory | undefined;
  try {
    inv = await readInventory(
      cfg.sysfsRoot,
      cfg.pfs.map((p) => p.name),
    );
  } catch (err) {
    results.push(fail('PFs', oneLine(err), `fix pfs in ${cfg.path}`));
  }
  for (const pf of inv?.values() ?? [])
    results.push(...(await pfChecks(cfg, runner, pf.name, pf.pci, pf.numVfs, pf.vfs.filter((v) => v.rep).length)));
  if (cfg.ipsec.mode !== 'off') results.push(...(await ipsecChecks(cfg, runner, ledger)));
  if (ledger) results.push(await admissionCheck(cfg, runner, ledger), ...(await overlayFor(cfg).check(runner, ledger)));
  if (cfg.failover?.mode === 'active-backup') results.push(await lagCheck(cfg, runner, inv));
  if (pfSwitch(cfg)) results.push(await pfSwitchCheck(cfg, runner), await garpToolCheck(runner));
  if (cfg.backend === 'real') {
    results.push(iommuCheck(), await hookCheck(ctx.hookPaths));
    const hook = installedHook(ctx.hookPaths);
    if (hook) results.push(hookPinCheck(cfg, hook.path, hook.text));
    const order = bootOrderCheck(cfg, readBootOrderFiles());
    if (order) results.push(order);
    results.push(await vmSlotsCheck(cfg));
  }
  return results;
}
