// Reading sysfs attributes: many exist but fail to read (EOPNOTSUPP) on devices that lack them,
// so an unreadable attribute is "absent", not an error.

import { readFile, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';

export async function readText(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').then(
    (s) => s.trim(),
    () => undefined,
  );
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
