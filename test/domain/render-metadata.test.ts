import { expect } from 'chai';
import { VFWIRE_NS } from '../../src/domain/interface-spec.js';
import { deriveMac } from '../../src/domain/mac.js';
import { parseDomainXml, parseMetadataElement } from '../../src/domain/parse-domain.js';
import { escapeAttr, renderMetadata, type MetadataInterface } from '../../src/domain/render-metadata.js';
import { refusal } from '../helpers/refusal.js';

const UUID = '0f8fad5b-d9cb-469f-a165-70867728950e';

/** What libvirt stores after `virsh metadata --key vfwire --set`: every unqualified element gets the prefix. */
function injectNamespace(xml: string): string {
  return xml
    .replace(/<(\/?)(net|interface)\b/g, '<$1vfwire:$2')
    .replace('<vfwire:net>', `<vfwire:net xmlns:vfwire="${VFWIRE_NS}">`);
}

describe('renderMetadata', () => {
  it('renders one interface without a namespace', () => {
    expect(renderMetadata([{ vni: 100 }])).to.equal('<net><interface vni="100"/></net>');
  });

  it('renders the given attributes in a fixed order, MACs lower-cased, no defaults added', () => {
    const xml = renderMetadata([
      { pf: 'ens1f0', encrypt: 'off', mtu: 9000, mac: '52:54:00:AA:BB:CC', vni: 16777215 },
      { vni: 7, encrypt: 'required' },
    ]);
    expect(xml).to.equal(
      '<net><interface vni="16777215" mac="52:54:00:aa:bb:cc" mtu="9000" encrypt="off" pf="ens1f0"/>' +
        '<interface vni="7" encrypt="required"/></net>',
    );
  });

  it('round-trips through parseMetadataElement and parseDomainXml', () => {
    const ifaces: MetadataInterface[] = [
      { vni: 100 },
      { vni: 200, mac: '52:54:00:aa:bb:cc', mtu: 1500, encrypt: 'off', pf: 'ens1f1' },
    ];
    const want = [
      { index: 0, vni: 100, mac: deriveMac(UUID, 0), encrypt: 'required' },
      { index: 1, vni: 200, mac: '52:54:00:aa:bb:cc', mtu: 1500, encrypt: 'off', pf: 'ens1f1' },
    ];
    const xml = renderMetadata(ifaces);
    expect(parseMetadataElement(xml, 'web1', UUID)).to.deep.equal(want);
    expect(parseMetadataElement(injectNamespace(xml), 'web1', UUID)).to.deep.equal(want);
    const domain = `<domain><name>web1</name><uuid>${UUID}</uuid><metadata>${injectNamespace(xml)}</metadata></domain>`;
    expect(parseDomainXml(domain).interfaces).to.deep.equal(want);
  });

  it('refuses what the parser would refuse, naming interface and field', () => {
    expect(refusal(() => renderMetadata([{ vni: 1 }, { vni: 0 }])).message).to.equal(
      'interface 1: vni: must be an integer 1..16777215 (got "0")',
    );
    expect(refusal(() => renderMetadata([{ vni: 1.5 }])).message).to.match(/^interface 0: vni: /);
    expect(refusal(() => renderMetadata([{ vni: 1, mtu: Number.NaN }])).message).to.equal(
      'interface 0: mtu: must be an integer 68..65535 (got "NaN")',
    );
    expect(refusal(() => renderMetadata([{ vni: 1, pf: 'a"b' }])).message).to.match(/^interface 0: pf: /);
    expect(refusal(() => renderMetadata([{ vni: 1, mac: '01:00:00:00:00:01' }])).message).to.match(
      /^interface 0: mac: must not be multicast/,
    );
    expect(refusal(() => renderMetadata([])).message).to.match(/^interfaces: at least one/);
    expect(refusal(() => renderMetadata(Array.from({ length: 17 }, (_, i) => ({ vni: i + 1 })))).message).to.equal(
      'interfaces: at most 16 (got 17)',
    );
    expect(
      refusal(() =>
        renderMetadata([
          { vni: 1, mac: '52:54:00:00:00:01' },
          { vni: 2, mac: '52:54:00:00:00:01' },
        ]),
      ).message,
    ).to.equal('interface 1: mac: same as interface 0 (52:54:00:00:00:01)');
  });

  it('prefixes messages with the context it is given', () => {
    expect(refusal(() => renderMetadata([{ vni: 0 }], { vm: 'web1' })).message).to.match(
      /^vm web1: interface 0: vni: /,
    );
  });
});

describe('escapeAttr', () => {
  it('escapes markup, quotes and whitespace that attribute normalisation would eat', () => {
    expect(escapeAttr(`a&b<c>"d'\te\nf\r`)).to.equal('a&amp;b&lt;c&gt;&quot;d&apos;&#9;e&#10;f&#13;');
  });
});
