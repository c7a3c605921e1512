// Parse untrusted XML (a domain XML on the hook's stdin, a metadata element from virsh) into a
// small element tree, refusing what could be abused before the parser sees it: oversized input
// and any DTD (entity expansion, external entities). fast-xml-parser does the parsing; this file
// only pre-checks, validates and reshapes its output, and resolves XML namespaces on request.

import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { ValidationError, type ErrorContext } from '../errors.js';
import { clip, quote } from '../quote.js';

export interface XmlElement {
  readonly type: 'element';
  /** Qualified name as written, e.g. `vfwire:net`. */
  readonly name: string;
  /** Attribute names as written (`xmlns:x` included), values with references decoded. */
  readonly attrs: ReadonlyMap<string, string>;
  readonly children: readonly XmlNode[];
  /** Offsets of the element in the source string (first `<` to last `>`), when known. */
  readonly span?: { readonly start: number; readonly end: number };
}

export interface XmlText {
  readonly type: 'text';
  /** Character data with references decoded; CDATA sections verbatim. */
  readonly text: string;
}

export type XmlNode = XmlElement | XmlText;

export interface ParseXmlOptions {
  /** Refuse input longer than this many UTF-8 bytes. Default 1 MiB. */
  maxBytes?: number;
  /** What the input is, for messages: `domain XML`, `metadata`. */
  label?: string;
  /** Passed to every ValidationError (e.g. the VM). */
  ctx?: ErrorContext;
}

const DEFAULT_MAX_XML_BYTES = 1024 * 1024;

// Any markup declaration: they only occur in a DTD, and a DTD is how entity bombs and external
// entities get in. Checked on the raw string, so a declaration inside a comment is refused too.
const DTD_RE = /<!\s*(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)/i;

// fast-xml-parser throws on elements named `__proto__`/`constructor`/`prototype` and renames a
// few others (`toString`...). Prefixing every tag with a character that cannot start an XML
// name keeps such names (legal XML, possibly in someone else's metadata) from breaking the
// parse. The prefix function must be idempotent: v5 applies it twice to self-closing tags.
const TAG_MARK = '^';
const markTag = (name: string): string => (name.startsWith(TAG_MARK) ? name : TAG_MARK + name);
const ATTR_MARK = '@';

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: ATTR_MARK,
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  cdataPropName: '#cdata',
  ignoreDeclaration: true,
  ignorePiTags: true,
  captureMetaData: true,
  transformTagName: markTag,
});
// Typed as the `Symbol` wrapper object in fxp.d.ts; it is a plain symbol.
const META = XMLParser.getMetaDataSymbol() as unknown as symbol;

/**
 * Parse `xml` and return its root element. Throws ValidationError, naming `label`, for input
 * over `maxBytes`, any DOCTYPE/ENTITY declaration, malformed XML (with line and column),
 * undefined entity references or more than one root element.
 */
export function parseXml(xml: string, options: ParseXmlOptions = {}): XmlElement {
  const { maxBytes = DEFAULT_MAX_XML_BYTES, label = 'XML', ctx = {} } = options;
  const fail = (msg: string): never => {
    throw new ValidationError(`${label}: ${msg}`, ctx);
  };

  if (typeof xml !== 'string') fail('not a string');
  // UTF-16 length <= UTF-8 bytes, so huge input is refused without scanning it.
  if (xml.length > maxBytes) fail(`too large (at least ${xml.length} bytes; at most ${maxBytes})`);
  const bytes = Buffer.byteLength(xml, 'utf8');
  if (bytes > maxBytes) fail(`too large (${bytes} bytes; at most ${maxBytes})`);
  const dtd = DTD_RE.exec(xml);
  if (dtd) {
    fail(`line ${lineOf(xml, dtd.index)}: DOCTYPE and ENTITY declarations are not allowed`);
  }

  // XMLValidator is deprecated in favour of a separate package, but it is the validator this
  // fast-xml-parser ships, and the parser itself does not report malformed input reliably.
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    const { line, col, msg } = valid.err;
    fail(`malformed at line ${line}${col ? `, column ${col}` : ''}: ${clip(msg, 120)}`);
  }

  let parsed: unknown;
  try {
    parsed = parser.parse(xml);
  } catch (err) {
    fail(`malformed: ${clip(err instanceof Error ? err.message : String(err), 120)}`);
  }

  const roots = toNodes(parsed, fail).filter((n): n is XmlElement => n.type === 'element');
  if (roots.length !== 1) fail(`expected one root element (found ${roots.length})`);
  return roots[0] as XmlElement;
}

// --- the parser's preserveOrder output -> XmlNode ---

type Fail = (msg: string) => never;

function toNodes(raw: unknown, fail: Fail): XmlNode[] {
  if (!Array.isArray(raw)) return fail('unexpected parser output');
  const nodes: XmlNode[] = [];
  for (const item of raw as unknown[]) {
    const node = toNode(item, fail);
    if (node) nodes.push(node);
  }
  return nodes;
}

function toNode(item: unknown, fail: Fail): XmlNode | undefined {
  if (typeof item !== 'object' || item === null) return fail('unexpected parser output');
  const record = item as Record<string, unknown>;
  const key = Object.keys(record).find((k) => k !== ':@');
  if (key === undefined) return undefined;
  const value = record[key];

  if (key === '#text') return { type: 'text', text: decodeReferences(String(value), fail) };
  if (key === '#cdata') {
    // [{ '#text': '...' }], verbatim: references in CDATA are not references.
    const parts = Array.isArray(value) ? (value as Array<Record<string, unknown>>) : [];
    return { type: 'text', text: parts.map((p) => String(p['#text'] ?? '')).join('') };
  }
  if (!key.startsWith(TAG_MARK)) return undefined; // processing instruction or declaration

  const attrs = new Map<string, string>();
  const rawAttrs = record[':@'];
  if (typeof rawAttrs === 'object' && rawAttrs !== null) {
    for (const [k, v] of Object.entries(rawAttrs)) {
      attrs.set(k.slice(ATTR_MARK.length), decodeReferences(String(v), fail));
    }
  }
  const meta = (item as Record<symbol, unknown>)[META] as { startIndex?: number; endIndex?: number } | undefined;
  const span =
    meta?.startIndex !== undefined && meta.endIndex !== undefined
      ? { start: meta.startIndex, end: meta.endIndex - 1 } // the parser's endIndex is one past the last `>`
      : undefined;
  return { type: 'element', name: key.slice(TAG_MARK.length), attrs, children: toNodes(value, fail), span };
}

// processEntities is off (no DTD means no entity expansion at all), so the five predefined
// entities and character references are decoded here, in a single pass.
const REFERENCE_RE = /&(?:#(\d{1,7})|#x([0-9A-Fa-f]{1,6})|([A-Za-z_][\w.-]*));|&/g;
const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeReferences(text: string, fail: Fail): string {
  if (!text.includes('&')) return text;
  return text.replace(REFERENCE_RE, (ref: string, dec?: string, hex?: string, name?: string) => {
    if (name !== undefined) {
      const ch = Object.hasOwn(PREDEFINED, name) ? PREDEFINED[name] : undefined;
      return ch ?? fail(`undefined entity ${quote(ref)}`);
    }
    if (dec === undefined && hex === undefined) return fail('"&" must be written as &amp;');
    const code = dec !== undefined ? Number.parseInt(dec, 10) : Number.parseInt(hex ?? '', 16);
    if (!isXmlChar(code)) return fail(`invalid character reference ${quote(ref)}`);
    return String.fromCodePoint(code);
  });
}

function isXmlChar(c: number): boolean {
  return (
    c === 0x9 ||
    c === 0xa ||
    c === 0xd ||
    (c >= 0x20 && c <= 0xd7ff) ||
    (c >= 0xe000 && c <= 0xfffd) ||
    (c >= 0x10000 && c <= 0x10ffff)
  );
}

// --- namespaces ---

/** In-scope namespace bindings: prefix ('' for the default namespace) -> URI ('' = none). */
export type NamespaceScope = ReadonlyMap<string, string>;

const XML_NS = 'http://www.w3.org/XML/1998/namespace';
export const ROOT_SCOPE: NamespaceScope = new Map([['xml', XML_NS]]);

/** The scope inside `el`: `parent` plus the xmlns / xmlns:p declarations on `el`. */
export function enterScope(parent: NamespaceScope, el: XmlElement): NamespaceScope {
  let scope: Map<string, string> | undefined;
  for (const [name, uri] of el.attrs) {
    const prefix = name === 'xmlns' ? '' : name.startsWith('xmlns:') ? name.slice(6) : undefined;
    if (prefix === undefined) continue;
    scope ??= new Map(parent);
    scope.set(prefix, uri);
  }
  return scope ?? parent;
}

export interface ExpandedName {
  /** Namespace URI; undefined for no namespace or an undeclared prefix. */
  readonly ns: string | undefined;
  readonly local: string;
  readonly prefix: string;
}

/** Resolve an element name against `scope`, which must already include `el`'s own declarations. */
export function expandName(el: XmlElement, scope: NamespaceScope): ExpandedName {
  const colon = el.name.indexOf(':');
  const prefix = colon < 0 ? '' : el.name.slice(0, colon);
  const local = colon < 0 ? el.name : el.name.slice(colon + 1);
  return { ns: scope.get(prefix) || undefined, local, prefix };
}

/** Is this attribute a namespace declaration rather than data? */
export function isNamespaceDeclaration(attrName: string): boolean {
  return attrName === 'xmlns' || attrName.startsWith('xmlns:');
}

export function childElements(el: XmlElement): XmlElement[] {
  return el.children.filter((n): n is XmlElement => n.type === 'element');
}

/** The element's own character data (text and CDATA children, not descendants). */
export function textOf(el: XmlElement): string {
  return el.children.map((n) => (n.type === 'text' ? n.text : '')).join('');
}

// --- showing hostile text in a one-line message ---

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < index; i = text.indexOf('\n', i + 1)) line++;
  return line;
}
