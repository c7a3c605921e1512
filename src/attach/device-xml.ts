// The device XML that attaches a lease to its VM, from templates/. Every value comes from the
// ledger, where it was validated; it is escaped anyway.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TEMPLATES_DIR } from '../program-files.js';
import { deviceAlias } from '../domain/device-aliases.js';
import type { Lease } from '../ledger/types.js';

export function renderDeviceXml(lease: Lease): string {
  if (lease.attach === 'netns') throw new Error(`lease ${lease.key}: a netns guest's VF is not attached by libvirt`);
  if (lease.attach === 'hostdev') {
    const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/.exec(lease.pci);
    if (!m) throw new Error(`lease ${lease.key}: PCI address "${lease.pci}" is not DDDD:BB:SS.F`);
    return fill('hostdev-interface.xml', {
      mac: lease.mac,
      pciDomain: m[1]!,
      pciBus: m[2]!,
      pciSlot: m[3]!,
      pciFunction: m[4]!,
      alias: deviceAlias(lease),
    });
  }
  return fill('sim-interface.xml', {
    mac: lease.mac,
    rep: lease.rep,
    mtu: String(lease.mtu),
    alias: deviceAlias(lease),
  });
}

function fill(template: string, values: Record<string, string>): string {
  const text = readFileSync(join(TEMPLATES_DIR, template), 'utf8').replace(/<!--[\s\S]*?-->\n/g, '');
  return text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`template ${template}: no value for {{${key}}}`);
    return value.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
  });
}
