// Whether a domain has a free hot-plug slot for each device vfwire attaches live. libvirt picks
// a hot-plugged device's address by matching its connect flags against each PCI bus's
// (src/conf/domain_addr.c virDomainPCIAddressBusSetModel, virDomainPCIAddressFlagsCompatible); a
// VM whose second attach finds no slot fails ("No more available PCI slots") after it started.
//
// q35: a VF (a PCIe function) and a virtio NIC are PCI Express endpoints (src/qemu/
// qemu_domain_address.c qemuDomainDeviceCalculatePCIConnectFlags), which only a pcie-root-port or
// a pcie-switch-downstream-port takes, one device each, hot-pluggable unless <target
// hotplug='off'/> (libvirt 6.3, "conf: new attribute hotplug for pci controllers"). pcie-root
// takes no hot-plug, and pci-bridge slots take conventional PCI devices only.
// pc: endpoints are conventional PCI, on pci-root's and each pci-bridge's slots 1-31, all
// hot-pluggable unless hotplug='off'; slot 1 of bus 0 is the PIIX3's, always
// (qemuDomainValidateDevicePCISlotsPIIX3); every other device's slot is in the XML.
// Other machines (microvm, non-x86) are not judged here: libvirt's attach decides. The count
// trusts the addresses in the XML: libvirt writes them at define and before prepare; a device
// without one is not counted (lenient: the attach then decides, failing closed).

import type { XmlElement } from './safe-xml.js';
import { childElements } from './safe-xml.js';

export type MachineKind = 'q35' | 'pc';

export interface HotplugSlots {
  machine: MachineKind;
  /** Slots a live attach can take now. */
  free: number;
}

/** One controller that vfwire adds per missing slot (libvirt assigns its index and address). */
export const ROOT_PORT_XML = "<controller type='pci' model='pcie-root-port'/>";

const PORTS = new Set(['pcie-root-port', 'pcie-switch-downstream-port']);
const PC_BUSES = new Set(['pci-root', 'pci-bridge']);
const PIIX3 = '0:1';

/** The domain's machine kind, from <os><type machine=...>; undefined for any other machine. */
export function machineKind(root: XmlElement): MachineKind | undefined {
  const os = childElements(root).find((el) => el.name === 'os');
  const machine =
    os &&
    childElements(os)
      .find((el) => el.name === 'type')
      ?.attrs.get('machine');
  if (machine === undefined) return undefined;
  if (/(^|-)q35(-|$)/.test(machine)) return 'q35';
  if (/^pc($|-i440fx(-|$)|-\d)/.test(machine)) return 'pc';
  return undefined;
}

/** Free hot-plug slots of a q35 or pc domain; undefined for other machines. */
export function hotplugSlots(root: XmlElement): HotplugSlots | undefined {
  const machine = machineKind(root);
  const devices = childElements(root).find((el) => el.name === 'devices');
  if (!machine) return undefined;
  const all = devices ? childElements(devices) : [];
  // "bus:slot" of every guest PCI address: a device's own <address>, not a hostdev's <source>.
  const used = new Set<string>();
  for (const dev of all) {
    for (const a of childElements(dev)) {
      if (a.name !== 'address' || a.attrs.get('type') !== 'pci') continue;
      const bus = pciNumber(a.attrs.get('bus'));
      const slot = pciNumber(a.attrs.get('slot'));
      if (bus !== undefined && slot !== undefined) used.add(`${bus}:${slot}`);
    }
  }
  const buses = all.filter((el) => el.name === 'controller' && el.attrs.get('type') === 'pci' && hotpluggable(el));
  let free = 0;
  for (const c of buses) {
    const model = c.attrs.get('model') ?? '';
    const index = pciNumber(c.attrs.get('index'));
    if (index === undefined) continue;
    if (machine === 'q35' && PORTS.has(model)) free += used.has(`${index}:0`) ? 0 : 1;
    if (machine === 'pc' && PC_BUSES.has(model))
      for (let slot = 1; slot <= 31; slot++) {
        const key = `${index}:${slot}`;
        if (!used.has(key) && key !== PIIX3) free++;
      }
  }
  return { machine, free };
}

/**
 * The one-line refusal when `needed` live attaches do not fit, or undefined. Names what to add
 * and the command that adds it.
 */
export function hotplugShortfall(slots: HotplugSlots | undefined, needed: number, vm: string): string | undefined {
  if (!slots || slots.free >= needed) return undefined;
  const missing = needed - slots.free;
  const what =
    slots.machine === 'q35'
      ? `${slots.free} empty pcie-root-port${slots.free === 1 ? '' : 's'}`
      : `${slots.free} free slot${slots.free === 1 ? '' : 's'} on its hot-pluggable PCI buses`;
  const add =
    slots.machine === 'q35'
      ? `run vfwire vm set ${vm} (it adds ${missing}) or add ${missing} ${ROOT_PORT_XML} to <devices>`
      : `add <controller type='pci' model='pci-bridge'/> to <devices>`;
  return `${needed} vfwire interface${needed === 1 ? '' : 's'} need${needed === 1 ? 's' : ''} ${needed} hot-plug slot${needed === 1 ? '' : 's'}, this ${slots.machine} VM has ${what}: ${add}`;
}

/** `xml` (a whole domain) with `n` more pcie-root-ports at the end of its <devices>. */
export function withRootPorts(xml: string, devices: XmlElement, n: number): string {
  if (!devices.span) throw new Error('domain XML: no source offsets for <devices>');
  const { start, end } = devices.span;
  const ports = Array.from({ length: n }, () => `  ${ROOT_PORT_XML}\n  `).join('');
  const element = xml.slice(start, end + 1);
  if (element.endsWith('/>'))
    return `${xml.slice(0, start)}${element.slice(0, -2)}>\n  ${ports}</devices>${xml.slice(end + 1)}`;
  const close = xml.lastIndexOf('</', end);
  return `${xml.slice(0, close)}${ports}${xml.slice(close)}`;
}

function hotpluggable(controller: XmlElement): boolean {
  const target = childElements(controller).find((el) => el.name === 'target');
  return target?.attrs.get('hotplug') !== 'off';
}

/** libvirt writes PCI numbers in hex (0x01); hand-written XML may use decimal. */
function pciNumber(text: string | undefined): number | undefined {
  if (text === undefined || !/^(0x[0-9a-fA-F]+|\d+)$/.test(text)) return undefined;
  return Number(text);
}
