import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hotplugShortfall, hotplugSlots, withRootPorts } from '../../src/domain/hotplug-slots.js';
import { parseDomainXml } from '../../src/domain/parse-domain.js';
import { childElements, parseXml } from '../../src/domain/safe-xml.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/domains');
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
const slotsOf = (xml: string) => hotplugSlots(parseXml(xml));

/** A domain of `machine` with these <devices> children. */
const domain = (machine: string, devices: string) =>
  `<domain type='kvm'><name>d</name><uuid>00000000-0000-4000-8000-000000000001</uuid><os><type arch='x86_64' machine='${machine}'>hvm</type></os><devices>${devices}</devices></domain>`;
const port = (index: number, extra = '') =>
  `<controller type='pci' index='${index}' model='pcie-root-port'>${extra}<address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x${index.toString(16)}'/></controller>`;
const on = (bus: number) =>
  `<address type='pci' domain='0x0000' bus='0x${bus.toString(16).padStart(2, '0')}' slot='0x00' function='0x0'/>`;

describe('hot-plug slots of a domain', () => {
  it('q35 as libvirt defines it with three root ports: USB and balloon take two, one is left', () => {
    const req = parseDomainXml(fixture('q35-three-ports.xml'));
    expect(req.slots).to.deep.equal({ machine: 'q35', free: 1 });
    expect(hotplugShortfall(req.slots, req.interfaces!.length, 'vm1')).to.equal(
      "2 vfwire interfaces need 2 hot-plug slots, this q35 VM has 1 empty pcie-root-port: run vfwire vm set vm1 (it adds 1) or add 1 <controller type='pci' model='pcie-root-port'/> to <devices>",
    );
    expect(hotplugShortfall(req.slots, 1, 'vm1'), 'one interface fits').to.equal(undefined);
  });

  it('pc: bus 0 slots 1-31 less the PIIX3 and every device on it', () => {
    expect(parseDomainXml(fixture('pc-i440fx.xml')).slots).to.deep.equal({ machine: 'pc', free: 27 });
    expect(slotsOf(domain('pc-i440fx-7.2', "<controller type='pci' index='0' model='pci-root'/>"))?.free).to.equal(30);
    const off = "<controller type='pci' index='0' model='pci-root'><target hotplug='off'/></controller>";
    expect(slotsOf(domain('pc', off))?.free, "pci-root with hotplug='off'").to.equal(0);
    const bridge = `<controller type='pci' index='0' model='pci-root'><target hotplug='off'/></controller><controller type='pci' index='1' model='pci-bridge'><address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></controller>`;
    expect(slotsOf(domain('pc', bridge))?.free, 'a pci-bridge: its 31 slots').to.equal(31);
    expect(hotplugShortfall({ machine: 'pc', free: 0 }, 1, 'vm1')).to.equal(
      "1 vfwire interface needs 1 hot-plug slot, this pc VM has 0 free slots on its hot-pluggable PCI buses: add <controller type='pci' model='pci-bridge'/> to <devices>",
    );
  });

  it("q35 counts only empty, hot-pluggable PCIe ports; a hostdev's host address is not a guest slot", () => {
    const root = "<controller type='pci' index='0' model='pcie-root'/>";
    const devices = [
      root,
      port(1),
      port(2),
      port(3, "<target hotplug='off'/>"),
      `<controller type='pci' index='4' model='pcie-switch-downstream-port'><address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/></controller>`,
      `<controller type='pci' index='6' model='pcie-to-pci-bridge'>${on(2)}</controller>`,
      `<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x2'/></source></hostdev>`,
      `<memballoon model='virtio'>${on(1)}</memballoon>`,
    ].join('');
    // Port 1: the balloon; port 2: the pcie-to-pci-bridge (whose PCI slots take no PCIe device);
    // port 3: hotplug off; the downstream port 4 is empty; the hostdev's <source> says nothing.
    expect(slotsOf(domain('pc-q35-8.2', devices))).to.deep.equal({ machine: 'q35', free: 1 });
    expect(slotsOf(domain('pc-q35-8.2', root)), 'libvirt added no port').to.deep.equal({ machine: 'q35', free: 0 });
  });

  it('other machines are not judged; untagged domains carry no slot count', () => {
    expect(slotsOf(domain('microvm', ''))).to.equal(undefined);
    expect(slotsOf(domain('virt-8.2', ''))).to.equal(undefined);
    expect(parseDomainXml(domain('q35', port(1))).slots, 'no vfwire metadata').to.equal(undefined);
  });

  it('adds root ports at the end of <devices>, leaving the rest of the text as it was', () => {
    const xml = fixture('q35-three-ports.xml');
    const devices = childElements(parseXml(xml)).find((el) => el.name === 'devices')!;
    const out = withRootPorts(xml, devices, 2);
    expect(out.match(/model='pcie-root-port'\/>/g)).to.have.length(2);
    expect(out.replace(/ {2}<controller type='pci' model='pcie-root-port'\/>\n {2}/g, '')).to.equal(xml);
    expect(out.indexOf("<controller type='pci' model='pcie-root-port'/>")).to.be.above(xml.indexOf('<memballoon'));
    const empty = '<domain><name>d</name><devices/></domain>';
    const emptyDevices = childElements(parseXml(empty)).find((el) => el.name === 'devices')!;
    const added = childElements(parseXml(withRootPorts(empty, emptyDevices, 1))).find((el) => el.name === 'devices')!;
    expect(childElements(added).map((el) => el.attrs.get('model'))).to.deep.equal(['pcie-root-port']);
  });
});
