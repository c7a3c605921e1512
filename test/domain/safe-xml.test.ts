import { expect } from 'chai';
import {
  childElements,
  enterScope,
  expandName,
  parseXml,
  ROOT_SCOPE,
  textOf,
  type XmlElement,
} from '../../src/domain/safe-xml.js';
import { clip, quote } from '../../src/quote.js';
import { refusal } from '../helpers/refusal.js';

describe('parseXml', () => {
  it('returns the root with attributes, text and CDATA, references decoded outside CDATA', () => {
    const root = parseXml(
      `<?xml version="1.0"?>\n<!-- c --><r a="1 &amp; 2" b='&#x41;'>x &lt; y<![CDATA[ &amp; ]]></r>`,
    );
    expect(root.name).to.equal('r');
    expect([...root.attrs]).to.deep.equal([
      ['a', '1 & 2'],
      ['b', 'A'],
    ]);
    expect(textOf(root)).to.equal('x < y &amp; ');
  });

  it('keeps whitespace as written', () => {
    expect(parseXml('<r a=" 1 "> x </r>').attrs.get('a')).to.equal(' 1 ');
    expect(textOf(parseXml('<r> x </r>'))).to.equal(' x ');
  });

  it('labels its refusals and passes the context on', () => {
    const err = refusal(() => parseXml('<a><b></a>', { label: 'metadata', ctx: { vm: 'web1' } }));
    expect(err.message).to.match(/^vm web1: metadata: malformed at line 1, column \d+: Expected closing tag 'b'/);
    expect(err.vm).to.equal('web1');
  });

  it('honours maxBytes', () => {
    expect(refusal(() => parseXml('<r>12345</r>', { maxBytes: 8 })).message).to.equal(
      'XML: too large (at least 12 bytes; at most 8)',
    );
    expect(refusal(() => parseXml('<r>\u00e9</r>', { maxBytes: 8 })).message).to.equal(
      'XML: too large (9 bytes; at most 8)',
    );
  });

  it('refuses more than one root, duplicate attributes and bad character references', () => {
    expect(refusal(() => parseXml('<a/><b/>')).message).to.equal('XML: expected one root element (found 2)');
    expect(refusal(() => parseXml('<a x="1" x="2"/>')).message).to.match(
      /^XML: malformed at line 1, column \d+: Attribute 'x' is repeated/,
    );
    expect(refusal(() => parseXml('<a x="&#0;"/>')).message).to.equal('XML: invalid character reference "&#0;"');
    expect(refusal(() => parseXml('<a x="a & b"/>')).message).to.equal('XML: "&" must be written as &amp;');
  });

  for (const decl of ['<!DOCTYPE r>', '<!doctype r>', '<!ENTITY x "y">', '<! DOCTYPE r>', '<!Element r ANY>']) {
    it(`refuses ${decl} before parsing`, () => {
      expect(refusal(() => parseXml(`${decl}\n<r/>`)).message).to.equal(
        'XML: line 1: DOCTYPE and ENTITY declarations are not allowed',
      );
    });
  }
});

describe('namespaces', () => {
  const NS = 'urn:example:a';
  function names(xml: string): Array<[string, string | undefined]> {
    const root = parseXml(xml);
    const out: Array<[string, string | undefined]> = [];
    const walk = (el: XmlElement, parentScope: typeof ROOT_SCOPE) => {
      const scope = enterScope(parentScope, el);
      const { ns, local } = expandName(el, scope);
      out.push([local, ns]);
      for (const child of childElements(el)) walk(child, scope);
    };
    walk(root, ROOT_SCOPE);
    return out;
  }

  it('resolves prefixes and the default namespace through nesting, rebinding and undeclaring', () => {
    const xml = `<r xmlns:p="${NS}"><p:a><b xmlns="${NS}"><c xmlns=""/><p:d xmlns:p="urn:other"/></b></p:a><q:e/></r>`;
    expect(names(xml)).to.deep.equal([
      ['r', undefined],
      ['a', NS],
      ['b', NS],
      ['c', undefined],
      ['d', 'urn:other'],
      ['e', undefined], // undeclared prefix: no namespace, never ours
    ]);
  });
});

describe('quote / clip', () => {
  it('JSON-quotes and escapes what would break or reorder a line', () => {
    expect(quote('a"b\nc')).to.equal('"a\\"b\\nc"');
    expect(quote('x\u2028\u0085\u202e\u200by')).to.equal('"x\\u2028\\u0085\\u202e\\u200by"');
  });

  it('cuts long values without splitting a character', () => {
    expect(quote('ab'.repeat(100), 4)).to.equal('"abab"… (200 characters)');
    expect(quote('😀'.repeat(10), 3)).to.equal('"😀😀😀"… (20 characters)');
  });

  it('clips library messages to one short line', () => {
    expect(clip('a\n  b\u0007c\u2029d', 100)).to.equal('a b?c d');
    expect(clip('x'.repeat(10), 4)).to.equal('xxxx…');
  });
});
