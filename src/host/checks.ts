// doctor's lines for the host itself: each PF as the lab notes set it up, the IOMMU for VFIO,
// and the libvirt hook installed, loaded, and looking where the config keeps the leases.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { release as kernelRelease } from 'node:os';
import { resolve } from 'node:path';
import { fail, pass, warn, type CheckResult } from '../check-result.js';
import type { Config } from '../config/config.js';
import { oneLine } from '../errors.js';
import { hookInstalledBy, rerenderCommand } from '../installer.js';
import type { Runner } from '../exec/runner.js';
import { processStartTimes } from './daemon-start.js';
import { readDevlinkState } from './devlink.js';

/** A PF as the lab notes set it up: VFs on, switchdev, dmfs for IPsec, a representor per VF. */
export async function pfChecks(
  cfg: Config,
  runner: Runner,
  name: string,
  pci: string,
  numVfs: number,
  reps: number,
): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  out.push(
    numVfs > 0
      ? pass(`${name}: SR-IOV`, `${numVfs} VFs enabled`)
      : fail(`${name}: SR-IOV`, 'no VFs enabled (sriov_numvfs is 0)', 'vfwire host setup'),
  );
  try {
    const dl = await readDevlinkState(runner, pci);
    out.push(
      dl.eswitchMode === 'switchdev'
        ? pass(`${name}: eswitch`, 'switchdev')
        : fail(`${name}: eswitch`, `mode ${dl.eswitchMode}: no representors, no overlay`, 'vfwire host setup'),
    );
    const fsm = dl.flowSteeringMode ?? 'not reported';
    if (dl.flowSteeringMode === 'dmfs') out.push(pass(`${name}: flow steering`, 'dmfs'));
    else
      out.push({
        check: `${name}: flow steering`,
        status: cfg.ipsec.mode === 'off' ? 'warn' : 'fail',
        detail: `${fsm}; IPsec packet offload needs dmfs`,
        fix: 'vfwire host setup',
      });
  } catch (err) {
    out.push(
      fail(
        `${name}: eswitch`,
        `devlink: ${oneLine(err)}`,
        'install devlink (iproute2) and check the PF is an mlx5 device',
      ),
    );
  }
  out.push(
    numVfs === 0 || reps > 0
      ? pass(`${name}: representors`, `${reps} of ${numVfs} VFs have one`)
      : fail(`${name}: representors`, 'VFs without representors', 'switch the eswitch to switchdev: vfwire host setup'),
  );
  return out;
}

export function iommuCheck(): CheckResult {
  const groups = existsSync('/sys/kernel/iommu_groups') ? readdirSync('/sys/kernel/iommu_groups').length : 0;
  const vfio =
    existsSync('/sys/bus/pci/drivers/vfio-pci') ||
    existsSync(`/lib/modules/${kernelRelease()}/kernel/drivers/vfio/pci`);
  if (groups > 0 && vfio) return pass('IOMMU / vfio-pci', `${groups} IOMMU groups, vfio-pci available`);
  return fail(
    'IOMMU / vfio-pci',
    `${groups} IOMMU groups, vfio-pci ${vfio ? 'available' : 'missing'}`,
    'enable VT-d/AMD-Vi in firmware, boot with intel_iommu=on or amd_iommu=on iommu=pt, modprobe vfio-pci',
  );
}

export const HOOK_PATHS = ['/etc/libvirt/hooks/qemu.d/vfwire', '/etc/libvirt/hooks/qemu'];

/** The installed hook's path and text, when there is one. */
export function installedHook(paths = HOOK_PATHS): { path: string; text: string } | undefined {
  const path = paths.find((p) => existsSync(p));
  return path === undefined ? undefined : { path, text: readFileSync(path, 'utf8') };
}

export async function hookCheck(paths = HOOK_PATHS): Promise<CheckResult> {
  const found = paths.find((p) => existsSync(p));
  if (!found)
    return fail(
      'libvirt hook',
      'not installed',
      'install the vfwire package or run ./install.sh, then restart libvirtd',
    );
  // libvirt discovers hooks when the daemon starts: a newer hook file is not loaded yet.
  const daemons = await processStartTimes(['libvirtd', 'virtqemud']);
  if (daemons.length === 0) return warn('libvirt hook', `${found}; no libvirtd or virtqemud running`, 'start libvirtd');
  const hookMs = statSync(found).mtimeMs;
  const stale = daemons.filter((d) => d.startedMs < hookMs);
  return stale.length
    ? fail(
        'libvirt hook',
        `${found} is newer than the running ${stale.map((d) => d.name).join(', ')}: installed, not loaded`,
        `restart ${stale[0]!.name} (libvirt reads hooks only when it starts)`,
      )
    : pass('libvirt hook', `${found}, loaded by ${daemons.map((d) => d.name).join(', ')}`);
}

/**
 * The state directory the installed hook looks for VM markers in (install.sh pins it) against
 * the config's: a start refuses when they differ, and without a pin every VM's release starts Node.
 */
export function hookPinCheck(cfg: Pick<Config, 'stateDir' | 'path'>, hookPath: string, text: string): CheckResult {
  const name = 'hook state directory';
  const pinned = /^export VFWIRE_STATE_DIR=(\S+)$/m.exec(text)?.[1];
  const redo = rerenderCommand(hookInstalledBy(text));
  if (pinned === undefined)
    return warn(
      name,
      `${hookPath} pins none: every VM's release and reconnect starts Node`,
      `${redo} with a valid ${cfg.path}`,
    );
  if (resolve(pinned) !== resolve(cfg.stateDir))
    return fail(
      name,
      `${hookPath} looks for leases in ${pinned}, ${cfg.path} keeps them in ${cfg.stateDir}: starts are refused`,
      `${redo} (no VM may hold a lease in the old directory), or put state_dir back`,
    );
  return pass(name, `${pinned}, as in ${cfg.path}`);
}
