// What the host has: PFs, their VFs and the VFs' representors, read from a sysfs tree. The root
// is a parameter so the same code reads /sys on a real host and the sim host's tree in tests.
//
//   <root>/class/net/<pf>/device          -> the PF's PCI device directory
//   <pci>/sriov_numvfs, sriov_totalvfs    VFs enabled / possible
//   <pci>/virtfnN                          -> the VF's PCI device; its netdev under virtfnN/net/
//   <root>/class/net/<rep>/phys_port_name  "pf0vf3" for VF 3 of PCI function 0 (switchdev)
//   <root>/class/net/<rep>/phys_switch_id  same as the PF's: the representor is on its eswitch

import { readdir, readlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { VfwireError } from '../errors.js';
import { ifExists } from '../fs-absent.js';
import { pciDirOf, readInt, readText } from './sysfs-read.js';

export interface VfInfo {
  index: number;
  pci: string;
  /** The VF's netdev in the host; absent while bound to vfio-pci. */
  netdev?: string;
  mac?: string;
  /** The MAC the PF holds for the VF (real hosts: vf-admin-macs.ts), put back on release. */
  adminMac?: string;
  rep?: string;
}

export interface PfInfo {
  name: string;
  pci: string;
  switchId?: string;
  numVfs: number;
  totalVfs: number;
  vfs: VfInfo[];
}

export type Inventory = Map<string, PfInfo>;

export async function readInventory(root: string, pfNames: string[]): Promise<Inventory> {
  const reps = await readRepresentors(root);
  const inv: Inventory = new Map();
  for (const name of pfNames) inv.set(name, await readPf(root, name, reps));
  return inv;
}

async function readPf(root: string, name: string, reps: RepInfo[]): Promise<PfInfo> {
  const netDir = join(root, 'class/net', name);
  let pciDir: string;
  try {
    pciDir = await pciDirOf(root, name);
  } catch (err) {
    throw new VfwireError(`PF ${name} not found under ${join(root, 'class/net')} (is the name in the config right?)`, {
      cause: err,
    });
  }
  const pci = basename(pciDir);
  const numVfs = await readInt(join(pciDir, 'sriov_numvfs'));
  if (numVfs === undefined) throw new VfwireError(`PF ${name} (${pci}) has no SR-IOV capability (no sriov_numvfs)`);
  const switchId = await readText(join(netDir, 'phys_switch_id'));
  const pfNum = Number(pci.split('.').pop());
  const vfs: VfInfo[] = [];
  for (let index = 0; index < numVfs; index++) {
    const link = join(pciDir, `virtfn${index}`);
    const target = await ifExists(readlink(link));
    const vfPci = target && basename(target);
    if (!vfPci) continue;
    // A VF bound to vfio-pci has no netdev: no net/ directory.
    const netdev = safeName(((await ifExists(readdir(join(link, 'net')))) ?? [])[0]);
    const mac = netdev ? await readText(join(root, 'class/net', netdev, 'address')) : undefined;
    const rep = reps.find((r) => r.pf === pfNum && r.vf === index && (!switchId || r.switchId === switchId))?.name;
    vfs.push({ index, pci: vfPci, netdev, mac, rep });
  }
  return { name, pci, switchId, numVfs, totalVfs: (await readInt(join(pciDir, 'sriov_totalvfs'))) ?? numVfs, vfs };
}

interface RepInfo {
  name: string;
  pf: number;
  vf: number;
  switchId?: string;
}

async function readRepresentors(root: string): Promise<RepInfo[]> {
  const dir = join(root, 'class/net');
  const names = (await ifExists(readdir(dir))) ?? [];
  const reps: RepInfo[] = [];
  for (const name of names) {
    const m = /^pf(\d+)vf(\d+)$/.exec((await readText(join(dir, name, 'phys_port_name'))) ?? '');
    if (m && safeName(name))
      reps.push({
        name,
        pf: Number(m[1]),
        vf: Number(m[2]),
        switchId: await readText(join(dir, name, 'phys_switch_id')),
      });
  }
  return reps;
}

/** Names read from sysfs end up in argv: only plain interface names, never one like an option. */
function safeName(name: string | undefined): string | undefined {
  return name !== undefined && /^(?!-)[A-Za-z0-9_.:@-]{1,15}$/.test(name) ? name : undefined;
}
