// `vfwire doctor`: every precondition of the lab setup, each a pass/fail line with the fix.
// Checks only read; none changes the host.

import { existsSync, readdirSync } from 'node:fs';
import { release as kernelRelease } from 'node:os';
import { oneLine } from '../errors.js';
import type { Config } from '../config/config.js';
import type { Runner } from '../exec/runner.js';
import { readDevlinkState } from '../host/devlink.js';
import { hasEspOffload } from '../host/esp-offload.js';
import { readInventory, type Inventory } from '../host/inventory.js';
import { hex32 } from '../ipsec/sa-ids.js';
import { readLedger } from '../ledger/store.js';
import type { LedgerData } from '../ledger/types.js';

export type Status = 'pass' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  check: string;
  status: Status;
  detail: string;
  fix?: string;
}

export interface DoctorContext {
  cfg: Config;
  runner: Runner;
  /** Paths of the libvirt hook files to look for; defaults to the system's. */
  hookPaths?: string[];
}

const pass = (check: string, detail: string): CheckResult => ({ check, status: 'pass', detail });
const fail = (check: string, detail: string, fix: string): CheckResult => ({ check, status: 'fail', detail, fix });

export async function runChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const { cfg } = ctx;
  const results: CheckResult[] = [];
  let ledger: LedgerData | undefined;
  try {
    ledger = await readLedger(cfg.stateDir);
    results.push(pass('ledger', `${cfg.stateDir}: ${Object.keys(ledger.leases).length} lease(s), ${Object.keys(ledger.vnis).length} VNI(s)`));
  } catch (err) {
    results.push(fail('ledger', oneLine(err), 'move the file aside and run vfwire gc'));
  }
  let inv: Inventory | undefined;
  try {
    inv = await readInventory(cfg.sysfsRoot, cfg.pfs.map((p) => p.name));
  } catch (err) {
    results.push(fail('PFs', oneLine(err), `fix pfs in ${cfg.path}`));
  }
  for (const pf of inv?.values() ?? []) results.push(...(await pfChecks(ctx, pf.name, pf.pci, pf.numVfs, pf.vfs.filter((v) => v.rep).length)));
  if (cfg.ipsec.mode !== 'off') results.push(...(await ipsecChecks(ctx, ledger)));
  if (cfg.backend === 'real') results.push(iommuCheck(), hookCheck(ctx.hookPaths));
  return results;
}

async function pfChecks(ctx: DoctorContext, name: string, pci: string, numVfs: number, reps: number): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  out.push(numVfs > 0 ? pass(`${name}: SR-IOV`, `${numVfs} VFs enabled`) : fail(`${name}: SR-IOV`, 'no VFs enabled (sriov_numvfs is 0)', 'vfwire host setup'));
  try {
    const dl = await readDevlinkState(ctx.runner, pci);
    out.push(dl.eswitchMode === 'switchdev' ? pass(`${name}: eswitch`, 'switchdev') : fail(`${name}: eswitch`, `mode ${dl.eswitchMode}: no representors, no overlay`, 'vfwire host setup'));
    const fsm = dl.flowSteeringMode ?? 'not reported';
    if (dl.flowSteeringMode === 'dmfs') out.push(pass(`${name}: flow steering`, 'dmfs'));
    else out.push({ check: `${name}: flow steering`, status: ctx.cfg.ipsec.mode === 'off' ? 'warn' : 'fail', detail: `${fsm}; IPsec packet offload needs dmfs`, fix: 'vfwire host setup' });
  } catch (err) {
    out.push(fail(`${name}: eswitch`, `devlink: ${oneLine(err)}`, 'install devlink (iproute2) and check the PF is an mlx5 device'));
  }
  out.push(numVfs === 0 || reps > 0 ? pass(`${name}: representors`, `${reps} of ${numVfs} VFs have one`) : fail(`${name}: representors`, 'VFs without representors', 'switch the eswitch to switchdev: vfwire host setup'));
  return out;
}

async function ipsecChecks(ctx: DoctorContext, ledger: LedgerData | undefined): Promise<CheckResult[]> {
  const { cfg, runner } = ctx;
  const out: CheckResult[] = [];
  const uplink = cfg.underlay.interface;
  const netns = cfg.underlay.netns ?? cfg.netns;
  try {
    const hw = await hasEspOffload(runner, netns, uplink);
    if (hw) out.push(pass(`${uplink}: ESP offload`, 'esp-hw-offload: on'));
    else out.push({ check: `${uplink}: ESP offload`, status: cfg.ipsec.allowSoftwareCrypto ? 'warn' : 'fail', detail: 'esp-hw-offload is not on: the NIC cannot encrypt', fix: 'a NIC with ESP offload (lab notes, step 1), or ipsec.allow_software_crypto: true' });
  } catch (err) {
    out.push(fail(`${uplink}: ESP offload`, `ethtool: ${oneLine(err)}`, 'apt-get install ethtool'));
  }
  const ipVersion = await runner.run({ argv: ['ip', '-V'] }).then((r) => /iproute2-(?:ss)?(\d+)\.(\d+)/.exec(r.stdout), () => null);
  const major = ipVersion ? Number(ipVersion[1]) * 100 + Number(ipVersion[2]) : 0;
  out.push(major >= 602 ? pass('iproute2', `${ipVersion![1]}.${ipVersion![2]}`) : fail('iproute2', `${ipVersion ? `${ipVersion[1]}.${ipVersion[2]}` : 'unknown'}: 'offload packet' needs 6.2 or newer`, 'apt-get install -t bookworm-backports iproute2'));
  for (const peer of cfg.peers) {
    const up = ledger?.ipsec?.peers[peer.name];
    if (!up) {
      out.push(fail(`IPsec to ${peer.name}`, 'no SAs installed', 'vfwire ipsec up'));
      continue;
    }
    const missing: string[] = [];
    for (const sa of up.sas) {
      const ok = await runner.run({ argv: [...(netns ? ['ip', '-n', netns] : ['ip']), 'xfrm', 'state', 'get', 'src', sa.src, 'dst', sa.dst, 'proto', 'esp', 'spi', hex32(sa.spi)] }).then(() => true, () => false);
      if (!ok) missing.push(`${sa.dir} ${hex32(sa.spi)}`);
    }
    out.push(missing.length ? fail(`IPsec to ${peer.name}`, `SA(s) gone from the kernel: ${missing.join(', ')} (an uplink that went down takes offloaded SAs with it)`, 'vfwire ipsec down && vfwire ipsec keygen --force ... (a fresh key: never reinstall a used one)') : pass(`IPsec to ${peer.name}`, `epoch ${up.epoch}, ${up.sas.length} SAs`));
  }
  return out;
}

function iommuCheck(): CheckResult {
  const groups = existsSync('/sys/kernel/iommu_groups') ? readdirSync('/sys/kernel/iommu_groups').length : 0;
  const vfio = existsSync('/sys/bus/pci/drivers/vfio-pci') || existsSync(`/lib/modules/${kernelRelease()}/kernel/drivers/vfio/pci`);
  if (groups > 0 && vfio) return pass('IOMMU / vfio-pci', `${groups} IOMMU groups, vfio-pci available`);
  return fail('IOMMU / vfio-pci', `${groups} IOMMU groups, vfio-pci ${vfio ? 'available' : 'missing'}`, 'enable VT-d/AMD-Vi in firmware, boot with intel_iommu=on or amd_iommu=on iommu=pt, modprobe vfio-pci');
}

function hookCheck(paths = ['/etc/libvirt/hooks/qemu.d/vfwire', '/etc/libvirt/hooks/qemu']): CheckResult {
  const found = paths.find((p) => existsSync(p));
  return found ? pass('libvirt hook', found) : fail('libvirt hook', 'not installed', './install.sh, then restart libvirtd');
}
