// The kernel's boot id: changes with every boot, so the ledger can tell leases of this boot
// from leftovers of one before a crash or reboot.

import { readFile } from 'node:fs/promises';

export async function readBootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
}
