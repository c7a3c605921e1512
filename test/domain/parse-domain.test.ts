import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import type { ValidationError } from '../../src/errors.js';
import { VFWIRE_NS } from '../../src/domain/interface-spec.js';
import { deriveMac } from '../../src/domain/mac.js';
import { readDomainIdentity } from '../../src/domain/domain-identity.js';
import { parseDomainXml, parseMetadataElement } from '../../src/domain/parse-domain.js';
import { FIXTURES } from '../helpers/golden.js';
import { refusal } from '../helpers/refusal.js';

const fixture = (name: string): string => readFileSync(join(FIXTURES, 'domains', name), 'utf8');

const UUID = '0f8fad5b-d9cb-469f-a165-70867728950e';

/** A minimal domain whose <metadata> holds `metadata`; `name` is inserted as written (escape it). */
function domain(metadata: string, { name = 'web1', uuid = UUID } = {}): string {
  return `<domain type="kvm"><name>${name}</name><uuid>${uuid}</uuid><metadata>${metadata}</metadata></domain>`;
}
/** The vfwire element as libvirt writes it, with one <vfwire:interface> per attribute string. */
function net(...ifaces: string[]): string {
  return `<vfwire:net xmlns:vfwire="${VFWIRE_NS}">${ifaces.map((a) => `<vfwire:interface ${a}/>`).join('')}</vfwire:net>`;
}

/** Run `fn`, expect a one-line ValidationError, return it. */
function oneLineRefusal(fn: () => unknown): ValidationError {
  const err = refusal(fn);
  expect(err.message).not.to.match(/[\n\r\u2028\u2029\u0085]/);
  expect(err.message.length, err.message).to.be.below(300);
  return err;
}

const refuseDomain = (xml: string): string => oneLineRefusal(() => parseDomainXml(xml)).message;
const refuseIface = (attrs: string): string => refuseDomain(domain(net(attrs)));
const firstIface = (attrs: string) => parseDomainXml(domain(net(attrs))).interfaces?.[0];

describe('parseDomainXml', () => {
  describe('valid metadata', () => {
    it('reads a libvirt domain with one interface and derives its MAC', () => {
      expect(parseDomainXml(fixture('single.xml'))).to.deep.equal({
        name: 'web1',
        uuid: UUID,
        interfaces: [{ index: 0, vni: 100, mac: deriveMac(UUID, 0), encrypt: 'required' }],
        // Its one pcie-root-port is empty (hotplug-slots.test.ts has the rules).
        slots: { machine: 'q35', free: 1 },
      });
    });

    it('reads several interfaces with every attribute, normalising UUID and MAC case', () => {
      const uuid = '6b29fc40-ca47-1067-b31d-00dd010662da';
      expect(parseDomainXml(fixture('multiple.xml'))).to.deep.equal({
        name: 'db-primary',
        uuid,
        interfaces: [
          { index: 0, vni: 100, mac: deriveMac(uuid, 0), encrypt: 'required' },
          { index: 1, vni: 16777215, mac: '52:54:00:ab:cd:ef', mtu: 9000, encrypt: 'off', pf: 'ens1f1' },
          { index: 2, vni: 1, mac: deriveMac(uuid, 2), mtu: 68, encrypt: 'required', pf: 'ens1f0np0' },
        ],
      });
    });

    const byNamespace: Array<[string, number]> = [
      ['ns-on-domain.xml', 200],
      ['ns-on-metadata.xml', 300],
      ['ns-default.xml', 400],
      ['ns-odd-prefix.xml', 500],
    ];
    for (const [file, vni] of byNamespace) {
      it(`finds the element by namespace URI: ${file}`, () => {
        expect(parseDomainXml(fixture(file)).interfaces).to.deep.equal([
          { index: 0, vni, mac: deriveMac(UUID, 0), encrypt: 'required' },
        ]);
      });
    }

    it('accepts a namespace declared again on the interface itself', () => {
      const xml = domain(`<v:net xmlns:v="${VFWIRE_NS}"><interface xmlns="${VFWIRE_NS}" vni="7"/></v:net>`);
      expect(parseDomainXml(xml).interfaces?.[0]?.vni).to.equal(7);
    });

    it('decodes references in names and values like any XML parser', () => {
      const req = parseDomainXml(domain(net('vni="&#49;0&#x30;"'), { name: 'a&amp;b &lt;c&gt;' }));
      expect(req.name).to.equal('a&b <c>');
      expect(req.interfaces?.[0]?.vni).to.equal(100);
    });

    it('is not bothered by element names that are JavaScript prototype keys elsewhere in the domain', () => {
      const xml = fixture('single.xml').replace(
        '<devices>',
        '<devices><__proto__ constructor="1"/><constructor/><toString/>',
      );
      expect(parseDomainXml(xml).interfaces).to.have.length(1);
    });

    it('ignores large content outside the vfwire element (the domain cap is 1 MiB)', () => {
      const xml = fixture('single.xml').replace(
        '<devices>',
        `<description>${'x'.repeat(200_000)}</description><devices>`,
      );
      expect(parseDomainXml(xml).interfaces).to.have.length(1);
    });
  });

  describe('not our VM', () => {
    for (const file of ['no-metadata.xml', 'other-metadata.xml', 'wrong-uri.xml']) {
      it(`returns interfaces: null for ${file}`, () => {
        const req = parseDomainXml(fixture(file));
        expect(req.interfaces).to.equal(null);
        expect(req.uuid).to.match(/^[0-9a-f-]{36}$/);
      });
    }
  });

  describe('hostile or malformed XML', () => {
    it('refuses malformed XML with a line number', () => {
      expect(refuseDomain(fixture('malformed.xml'))).to.match(/^domain XML: malformed at line 7, column \d+: /);
    });

    it('refuses a DOCTYPE with entities (billion laughs) before parsing', () => {
      const started = Date.now();
      expect(refuseDomain(fixture('billion-laughs.xml'))).to.equal(
        'domain XML: line 2: DOCTYPE and ENTITY declarations are not allowed',
      );
      expect(Date.now() - started).to.be.below(100);
    });

    it('refuses an external entity (SYSTEM), whatever the case of the keywords', () => {
      expect(refuseDomain(fixture('external-entity.xml'))).to.equal(
        'domain XML: line 2: DOCTYPE and ENTITY declarations are not allowed',
      );
    });

    it('refuses an ENTITY declaration even outside a DOCTYPE', () => {
      expect(refuseDomain(`<!ENTITY x "y">${domain('')}`)).to.include(
        'DOCTYPE and ENTITY declarations are not allowed',
      );
    });

    it('refuses undefined entity references', () => {
      expect(refuseDomain(domain('', { name: 'a&nbsp;b' }))).to.equal('domain XML: undefined entity "&nbsp;"');
    });

    it('refuses several megabytes quickly, with a short message', () => {
      const huge = fixture('single.xml').replace('<devices>', `<devices>${'<a/>'.repeat(1_500_000)}`);
      const started = Date.now();
      const message = refuseDomain(huge);
      expect(Date.now() - started).to.be.below(250);
      expect(message).to.equal(`domain XML: too large (at least ${huge.length} bytes; at most 1048576)`);
    });

    it('counts bytes, not characters', () => {
      const xml = domain('', { name: '\u20ac'.repeat(400_000) }); // 3 bytes each in UTF-8
      expect(xml.length).to.be.below(1024 * 1024);
      expect(refuseDomain(xml)).to.match(/^domain XML: too large \(12\d{5} bytes; at most 1048576\)$/);
    });

    it('refuses a vfwire element over 64 KiB inside an acceptable domain', () => {
      const xml = domain(net(`vni="100" mac="${'a'.repeat(70_000)}"`));
      expect(refuseDomain(xml)).to.match(/^vm web1: metadata: vfwire element too large \(\d+ bytes; at most 65536\)$/);
    });

    it('refuses a huge attribute without echoing it', () => {
      const message = refuseIface(`vni="${'9'.repeat(50_000)}"`);
      expect(message).to.equal('vm web1: interface 0: vni: too long (50000 characters; at most 64)');
    });

    it('refuses a root element other than <domain>', () => {
      expect(refuseDomain('<network><name>x</name></network>')).to.equal(
        'domain XML: root element must be <domain> (got <network>)',
      );
    });

    it('refuses an empty document', () => {
      expect(refuseDomain('')).to.match(/^domain XML: malformed at line 1/);
    });
  });

  describe('namespace rules', () => {
    it('ignores the vfwire prefix when it is bound to another URI', () => {
      const xml = domain(
        `<vfwire:net xmlns:vfwire="https://example.org/not-vfwire"><vfwire:interface vni="0"/></vfwire:net>`,
      );
      expect(parseDomainXml(xml).interfaces).to.equal(null);
    });

    it('ignores an unqualified <net> and an undeclared prefix', () => {
      expect(parseDomainXml(domain('<net><interface vni="1"/></net>')).interfaces).to.equal(null);
      expect(parseDomainXml(domain('<vfwire:net><vfwire:interface vni="1"/></vfwire:net>')).interfaces).to.equal(null);
    });

    it('refuses two vfwire elements', () => {
      expect(refuseDomain(fixture('two-nets.xml'))).to.equal(
        `vm web1: metadata: more than one element in namespace ${VFWIRE_NS} (found 2)`,
      );
    });

    it('refuses a vfwire element that is not <net>', () => {
      expect(refuseDomain(domain(`<v:nets xmlns:v="${VFWIRE_NS}"/>`))).to.equal(
        'vm web1: metadata: unknown vfwire element <v:nets> (expected <net>)',
      );
    });

    it('refuses an unqualified <interface> inside a prefixed <net>', () => {
      expect(refuseDomain(domain(`<v:net xmlns:v="${VFWIRE_NS}"><interface vni="1"/></v:net>`))).to.equal(
        `vm web1: net: unexpected element <interface> in no namespace (expected <interface> in ${VFWIRE_NS})`,
      );
    });

    it('refuses an interface whose prefix is rebound to another URI', () => {
      const xml = domain(
        `<v:net xmlns:v="${VFWIRE_NS}"><v:interface xmlns:v="https://example.org/x" vni="1"/></v:net>`,
      );
      expect(refuseDomain(xml)).to.match(
        /^vm web1: net: unexpected element <v:interface> in https:\/\/example.org\/x /,
      );
    });

    it('refuses an interface that undeclares the default namespace', () => {
      const xml = domain(`<net xmlns="${VFWIRE_NS}"><interface xmlns="" vni="1"/></net>`);
      expect(refuseDomain(xml)).to.match(/^vm web1: net: unexpected element <interface> in no namespace/);
    });

    it('refuses other elements, attributes and text in <net> and <interface>', () => {
      expect(refuseDomain(domain(`<v:net xmlns:v="${VFWIRE_NS}"><v:interfaces vni="1"/></v:net>`))).to.match(
        /^vm web1: net: unexpected element <v:interfaces> in the vfwire namespace/,
      );
      expect(refuseDomain(domain(`<v:net xmlns:v="${VFWIRE_NS}" mode="x"><v:interface vni="1"/></v:net>`))).to.equal(
        'vm web1: net: mode: unknown attribute (<net> takes none)',
      );
      expect(refuseDomain(domain(`<v:net xmlns:v="${VFWIRE_NS}">vni 100<v:interface vni="1"/></v:net>`))).to.equal(
        'vm web1: net: unexpected text "vni 100"',
      );
      expect(
        refuseDomain(domain(`<v:net xmlns:v="${VFWIRE_NS}"><v:interface vni="1"><v:mac/></v:interface></v:net>`)),
      ).to.equal('vm web1: interface 0: unexpected child element <v:mac>');
    });
  });

  describe('interface attributes', () => {
    it('accepts the VNI bounds', () => {
      expect(firstIface('vni="1"')?.vni).to.equal(1);
      expect(firstIface('vni="16777215"')?.vni).to.equal(16777215);
    });

    const badVnis = [
      '0',
      '16777216',
      '0x10',
      '1e3',
      ' 100',
      '100 ',
      '100.0',
      '-1',
      '+1',
      '0100',
      '',
      '١٠٠',
      '99999999999',
    ];
    for (const vni of badVnis) {
      it(`refuses vni=${JSON.stringify(vni)}`, () => {
        expect(refuseIface(`vni="${vni}"`)).to.equal(
          `vm web1: interface 0: vni: must be an integer 1..16777215 (got ${JSON.stringify(vni)})`,
        );
      });
    }

    it('requires vni', () => {
      expect(refuseIface('mtu="1500"')).to.equal(
        'vm web1: interface 0: vni: required (must be an integer 1..16777215)',
      );
    });

    it('names the interface by its position', () => {
      expect(refuseDomain(domain(net('vni="1"', 'vni="0"')))).to.match(/^vm web1: interface 1: vni: /);
    });

    it('refuses unknown attributes (typo protection), before reporting the missing one', () => {
      expect(refuseIface('vin="100"')).to.equal(
        'vm web1: interface 0: vin: unknown attribute (known: vni, mac, mtu, encrypt, pf)',
      );
      expect(refuseIface(`vfwire:vni="100"`)).to.match(/^vm web1: interface 0: vfwire:vni: unknown attribute/);
      expect(refuseIface('vni="1" __proto__="x"')).to.match(/^vm web1: interface 0: __proto__: unknown attribute/);
    });

    it('checks mtu 68..65535', () => {
      expect(firstIface('vni="1" mtu="68"')?.mtu).to.equal(68);
      expect(firstIface('vni="1" mtu="65535"')?.mtu).to.equal(65535);
      for (const mtu of ['67', '65536', '1500.5', '9k']) {
        expect(refuseIface(`vni="1" mtu="${mtu}"`)).to.equal(
          `vm web1: interface 0: mtu: must be an integer 68..65535 (got "${mtu}")`,
        );
      }
    });

    it('checks encrypt', () => {
      expect(firstIface('vni="1" encrypt="off"')?.encrypt).to.equal('off');
      expect(firstIface('vni="1"')?.encrypt).to.equal('required');
      for (const encrypt of ['on', 'OFF', 'none', '']) {
        expect(refuseIface(`vni="1" encrypt="${encrypt}"`)).to.equal(
          `vm web1: interface 0: encrypt: must be "required" or "off" (got "${encrypt}")`,
        );
      }
    });

    it('checks pf as an interface name', () => {
      expect(firstIface('vni="1" pf="enp59s0f0np0"')?.pf).to.equal('enp59s0f0np0');
      for (const pf of ['a'.repeat(16), 'eth 0', 'eth0/x', '']) {
        expect(refuseIface(`vni="1" pf="${pf}"`)).to.match(
          /^vm web1: interface 0: pf: must be a network interface name/,
        );
      }
      expect(refuseIface('vni="1" pf=".."')).to.equal(
        'vm web1: interface 0: pf: must be a network interface name, not "." or ".." (got "..")',
      );
    });

    const badMacs: Array<[string, string]> = [
      ['01:00:5e:00:00:01', 'must not be multicast (low bit of the first octet set)'],
      ['33:33:00:00:00:01', 'must not be multicast (low bit of the first octet set)'],
      ['00:00:00:00:00:00', 'must not be all-zero'],
      ['FF:FF:FF:FF:FF:FF', 'must not be the broadcast address'],
      ['52-54-00-12-34-56', 'must be six colon-separated hex octets like 52:54:00:12:34:56'],
      ['52:54:00:12:34', 'must be six colon-separated hex octets like 52:54:00:12:34:56'],
      ['52:54:00:12:34:5g', 'must be six colon-separated hex octets like 52:54:00:12:34:56'],
    ];
    for (const [mac, reason] of badMacs) {
      it(`refuses mac ${mac}`, () => {
        expect(refuseIface(`vni="1" mac="${mac}"`)).to.equal(`vm web1: interface 0: mac: ${reason} (got "${mac}")`);
      });
    }

    it('refuses two interfaces with the same MAC, whatever its case', () => {
      const xml = domain(net('vni="1" mac="52:54:00:aa:bb:cc"', 'vni="2"', 'vni="3" mac="52:54:00:AA:BB:CC"'));
      expect(refuseDomain(xml)).to.equal('vm web1: interface 2: mac: same as interface 0 (52:54:00:aa:bb:cc)');
    });

    it('accepts 16 interfaces and refuses 17', () => {
      const attrs = (n: number) => Array.from({ length: n }, (_, i) => `vni="${i + 1}"`);
      const sixteen = parseDomainXml(domain(net(...attrs(16)))).interfaces ?? [];
      expect(sixteen.map((i) => i.index)).to.deep.equal([...Array(16).keys()]);
      expect(new Set(sixteen.map((i) => i.mac)).size).to.equal(16);
      expect(refuseDomain(domain(net(...attrs(17))))).to.equal('vm web1: interfaces: at most 16 (got 17)');
    });

    it('refuses an empty <net/>', () => {
      expect(refuseDomain(domain(`<vfwire:net xmlns:vfwire="${VFWIRE_NS}"/>`))).to.equal(
        'vm web1: interfaces: at least one <interface> is required (an empty <net/> asks for nothing)',
      );
    });
  });

  describe('VM names and UUIDs in messages', () => {
    const oddNames: Array<[string, string, string]> = [
      // [as written in the XML, the name parsed, how messages show it]
      ['my vm', 'my vm', '"my vm"'],
      ['say "hi"', 'say "hi"', '"say \\"hi\\""'],
      ["it's", "it's", '"it\'s"'],
      ['wéb-1 ✓', 'wéb-1 ✓', '"wéb-1 ✓"'],
      ['line1\nline2', 'line1\nline2', '"line1\\nline2"'],
      ['a&#13;b\tc', 'a\rb\tc', '"a\\rb\\tc"'],
      ['x\u2028y\u0085z\u202eq', 'x\u2028y\u0085z\u202eq', '"x\\u2028y\\u0085z\\u202eq"'],
      ['&lt;b&gt;&amp;', '<b>&', '"<b>&"'],
    ];
    for (const [written, parsed, shown] of oddNames) {
      it(`quotes ${shown} and keeps the message on one line`, () => {
        expect(parseDomainXml(domain(net('vni="1"'), { name: written })).name).to.equal(parsed);
        const err = oneLineRefusal(() => parseDomainXml(domain(net('vni="0"'), { name: written })));
        expect(err.message).to.equal(`vm ${shown}: interface 0: vni: must be an integer 1..16777215 (got "0")`);
        expect(err.vm, 'the raw name, for callers').to.equal(parsed);
      });
    }

    it('shows plain names as they are', () => {
      const err = oneLineRefusal(() => parseDomainXml(domain(net('vni="0"'), { name: 'web-1.prod_a' })));
      expect(err.message).to.match(/^vm web-1\.prod_a: interface 0: vni: /);
      expect(err.vm).to.equal('web-1.prod_a');
    });

    it('cuts very long names', () => {
      const message = refuseDomain(domain(net('vni="0"'), { name: 'n'.repeat(5000) }));
      expect(message).to.equal(
        `vm "${'n'.repeat(64)}"… (5000 characters): interface 0: vni: must be an integer 1..16777215 (got "0")`,
      );
    });

    it('normalises the UUID to lower case', () => {
      expect(parseDomainXml(domain('', { uuid: UUID.toUpperCase() })).uuid).to.equal(UUID);
    });

    for (const uuid of ['not-a-uuid', UUID.replace(/-/g, ''), `{${UUID}}`, `${UUID} `, `${UUID.slice(0, -1)}g`]) {
      it(`refuses uuid ${JSON.stringify(uuid)}`, () => {
        expect(refuseDomain(domain('', { uuid }))).to.equal(
          `vm web1: uuid: must be a canonical UUID, 8-4-4-4-12 hex digits (got ${JSON.stringify(uuid)})`,
        );
      });
    }

    it('refuses a missing or empty uuid, and a missing name', () => {
      expect(refuseDomain('<domain><name>web1</name></domain>')).to.equal('vm web1: uuid: <uuid> is missing');
      expect(refuseDomain(domain('', { uuid: '' }))).to.equal(
        'vm web1: uuid: must be a canonical UUID, 8-4-4-4-12 hex digits (empty)',
      );
      expect(refuseDomain(`<domain><uuid>${UUID}</uuid></domain>`)).to.equal('domain XML: name: <name> is missing');
      expect(refuseDomain(`<domain><name> </name><uuid>${UUID}</uuid></domain>`)).to.equal(
        'domain XML: name: <name> is empty',
      );
    });
  });
});

describe('readDomainIdentity', () => {
  it('reads name and UUID even when the vfwire metadata is broken', () => {
    expect(readDomainIdentity(domain(net('vni="0" bogus="1"'), { uuid: UUID.toUpperCase() }))).to.deep.equal({
      name: 'web1',
      uuid: UUID,
    });
  });

  it('still refuses hostile XML', () => {
    expect(oneLineRefusal(() => readDomainIdentity(fixture('billion-laughs.xml'))).message).to.include('DOCTYPE');
  });
});

describe('parseMetadataElement', () => {
  const parse = (xml: string, vm = 'web1', uuid = UUID) => parseMetadataElement(xml, vm, uuid);
  const expected = [{ index: 0, vni: 100, mac: deriveMac(UUID, 0), encrypt: 'required' }];

  it('reads what `virsh metadata VM URI` prints: the element with its namespace stripped', () => {
    expect(parse('<net>\n  <interface vni="100"/>\n</net>\n')).to.deep.equal(expected);
  });

  it('reads the element with a prefix or default namespace declared on it', () => {
    expect(parse(`<vfwire:net xmlns:vfwire="${VFWIRE_NS}"><vfwire:interface vni="100"/></vfwire:net>`)).to.deep.equal(
      expected,
    );
    expect(parse(`<x:net xmlns:x="${VFWIRE_NS}"><x:interface vni="100"/></x:net>`)).to.deep.equal(expected);
    expect(parse(`<net xmlns="${VFWIRE_NS}"><interface vni="100"/></net>`)).to.deep.equal(expected);
  });

  it('refuses an element in another namespace or with an undeclared prefix', () => {
    expect(
      oneLineRefusal(() =>
        parse(`<vfwire:net xmlns:vfwire="https://example.org/"><vfwire:interface vni="1"/></vfwire:net>`),
      ).message,
    ).to.equal(`vm web1: metadata: <vfwire:net> is not in namespace ${VFWIRE_NS} (it is in https://example.org/)`);
    expect(oneLineRefusal(() => parse('<v:net><v:interface vni="1"/></v:net>')).message).to.equal(
      `vm web1: metadata: <v:net> is not in namespace ${VFWIRE_NS} (undeclared prefix)`,
    );
  });

  it('applies the same attribute rules, naming the VM', () => {
    expect(oneLineRefusal(() => parse('<net><interface vni="1" vin="2"/></net>', 'my vm')).message).to.equal(
      'vm "my vm": interface 0: vin: unknown attribute (known: vni, mac, mtu, encrypt, pf)',
    );
  });

  it('refuses more than 64 KiB, DOCTYPEs and malformed input', () => {
    expect(oneLineRefusal(() => parse(`<net><interface vni="1"/>${' '.repeat(70_000)}</net>`)).message).to.equal(
      'vm web1: metadata: too large (at least 70031 bytes; at most 65536)',
    );
    expect(oneLineRefusal(() => parse('<!DOCTYPE net><net/>')).message).to.equal(
      'vm web1: metadata: line 1: DOCTYPE and ENTITY declarations are not allowed',
    );
    expect(oneLineRefusal(() => parse('<net><interface vni="1"></net>')).message).to.match(
      /^vm web1: metadata: malformed at line 1/,
    );
  });

  it('checks the UUID it derives MACs from', () => {
    expect(oneLineRefusal(() => parse('<net><interface vni="1"/></net>', 'web1', 'nope')).message).to.equal(
      'vm web1: uuid: must be a canonical UUID, 8-4-4-4-12 hex digits (got "nope")',
    );
  });
});
