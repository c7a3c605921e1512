// The hot-plug slots of defined VMs (domain/hotplug-slots.ts): `vfwire vm set` adds the
// pcie-root-ports a q35 VM lacks to its persistent definition, as virt-install provisions them,
// and `doctor` lists the tagged VMs that lack them. A start is refused without them (prepare).

import { fail, pass, warn, type CheckResult } from '../check-result.js';
import type { Config } from '../config/config.js';
import { hotplugShortfall, hotplugSlots, withRootPorts, type HotplugSlots } from '../domain/hotplug-slots.js';
import { DOMAIN_XML_MAX_BYTES } from '../domain/limits.js';
import { parseDomainXml } from '../domain/parse-domain.js';
import { childElements, parseXml } from '../domain/safe-xml.js';
import { oneLine } from '../errors.js';
import { ErrorCode, isLibvirtError, openConnection, XmlFlag, type Connection, type Domain } from '../libvirt/index.js';

export interface PortsAdded {
  added: number;
  /** Before the change; undefined for a machine vfwire does not judge. */
  slots?: HotplugSlots;
}

/**
 * Makes room for `needed` live attaches in a q35 domain's persistent definition (it applies at
 * the next start). Read with the secure flag, so the redefinition keeps passwords, as `virsh edit`.
 */
export async function addMissingRootPorts(conn: Connection, dom: Domain, needed: number): Promise<PortsAdded> {
  const xml = await dom.xmlDesc(XmlFlag.Inactive | XmlFlag.Secure);
  const root = parseXml(xml, { maxBytes: DOMAIN_XML_MAX_BYTES, label: 'domain XML' });
  const slots = hotplugSlots(root);
  const devices = childElements(root).find((el) => el.name === 'devices');
  if (!slots || slots.machine !== 'q35' || slots.free >= needed || !devices) return { added: 0, slots };
  const added = needed - slots.free;
  (await conn.defineXml(withRootPorts(xml, devices, added))).free();
  return { added, slots };
}

/** doctor: every defined tagged VM has a free hot-plug slot per vfwire interface. */
export async function vmSlotsCheck(cfg: Pick<Config, 'libvirtUri'>): Promise<CheckResult> {
  const name = 'VM hot-plug slots';
  let conn: Connection;
  try {
    conn = await openConnection(cfg.libvirtUri);
  } catch (err) {
    return warn(name, `could not list the VMs at ${cfg.libvirtUri}: ${oneLine(err)}`, 'start libvirtd');
  }
  try {
    const short: string[] = [];
    let tagged = 0;
    for (const ref of await conn.listDomains()) {
      const dom = await conn.lookupDomainByUuid(ref.uuid).catch((err: unknown) => {
        if (isLibvirtError(err, ErrorCode.NoDomain)) return undefined; // undefined since the listing
        throw err;
      });
      if (!dom) continue;
      try {
        const req = parseDomainXml(await dom.xmlDesc(XmlFlag.Inactive));
        if (!req.interfaces?.length) continue;
        tagged++;
        const why = hotplugShortfall(req.slots, req.interfaces.length, ref.name);
        if (why) short.push(`${ref.name}: ${why}`);
      } catch (err) {
        short.push(`${ref.name}: ${oneLine(err)}`);
      } finally {
        dom.free();
      }
    }
    return short.length
      ? fail(name, short.join('; '), 'as each VM says (q35: vfwire vm set VM adds the missing pcie-root-ports)')
      : pass(name, `${tagged} tagged VM(s), each with a free hot-plug slot per vfwire interface`);
  } finally {
    await conn.close();
  }
}
