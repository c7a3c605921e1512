// The vfwire devices a running domain still has: the `ua-vfwire-N` user aliases of the devices
// in its live XML (libvirt keeps a user alias as given).

import { childElements, parseXml } from './safe-xml.js';

/** The user alias ("ua-" prefix, kept by libvirt) that marks vfwire's device of a lease's index. */
export function deviceAlias(lease: { index: number }): string {
  return `ua-vfwire-${lease.index}`;
}

export function vfwireAliases(domainXml: string): Set<string> {
  const domain = parseXml(domainXml, { label: 'live domain XML' });
  const devices = childElements(domain).find((e) => e.name === 'devices');
  const aliases = (devices ? childElements(devices) : [])
    .flatMap((dev) => childElements(dev).filter((e) => e.name === 'alias'))
    .map((a) => a.attrs.get('name') ?? '');
  return new Set(aliases.filter((name) => /^ua-vfwire-\d+$/.test(name)));
}
