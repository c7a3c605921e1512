// Reading sysfs attributes: many exist but fail to read on devices that lack them, so those
// answers mean "absent": ENOENT/ENOTDIR (no such attribute), EOPNOTSUPP (phys_port_name and
// phys_switch_id of a netdev without ndo_get_phys_port_name/_parent_id, net/core/net-sysfs.c),
// EINVAL (mlx5's lag debugfs files while the LAG is inactive, lag/debugfs.c), ENODEV (a device
// going away). Anything else (EACCES, EIO) is a failure and thrown.

import { readFile, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';

const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'EOPNOTSUPP', 'EINVAL', 'ENODEV']);

export async function readText(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if (ABSENT.has((err as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw err;
  }
}

export async function readInt(path: string): Promise<number | undefined> {
  const text = await readText(path);
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
}

/** The PCI device directory behind a netdev (<root>/class/net/<dev>/device, resolved). */
export async function pciDirOf(sysfsRoot: string, netdev: string): Promise<string> {
  return realpath(join(sysfsRoot, 'class/net', netdev, 'device'));
}

/** The PCI address of a netdev's device, e.g. 0000:03:00.0. */
export async function pciAddressOf(sysfsRoot: string, netdev: string): Promise<string> {
  return basename(await pciDirOf(sysfsRoot, netdev));
}
