// A domain's name and UUID from its XML: all that the hook's started, release and reconnect
// calls read of it (they go by the ledger, whatever the metadata says). Apart from
// parse-domain.ts, so that those calls do not load the interface schema.

import { ValidationError, type ErrorContext } from '../errors.js';
import { UUID_RE } from '../identifiers.js';
import { quote } from '../quote.js';
import { DOMAIN_XML_MAX_BYTES } from './limits.js';
import { childElements, parseXml, textOf, type XmlElement } from './safe-xml.js';

/**
 * Name and UUID only, for paths that must work whatever the metadata says (release and
 * reconnect go by the ledger). Still refuses oversized, DTD-carrying or malformed XML.
 */
export function readDomainIdentity(xml: string): { name: string; uuid: string } {
  const { name, uuid } = readDomain(xml);
  return { name, uuid };
}

export function readDomain(xml: string): { root: XmlElement; name: string; uuid: string; ctx: ErrorContext } {
  const root = parseXml(xml, { maxBytes: DOMAIN_XML_MAX_BYTES, label: 'domain XML' });
  if (root.name !== 'domain') {
    throw new ValidationError(`domain XML: root element must be <domain> (got <${shortName(root.name)}>)`);
  }
  const name = textOf(onlyChild(root, 'name', {}, true));
  if (name.trim() === '') throw new ValidationError('domain XML: name: <name> is empty');
  const ctx: ErrorContext = { vm: name };
  const uuid = normalizeUuid(textOf(onlyChild(root, 'uuid', ctx, true)), ctx);
  return { root, name, uuid, ctx };
}

/** The single unprefixed child `name` of <domain>; libvirt writes exactly one. */
export function onlyChild(root: XmlElement, name: string, ctx: ErrorContext, required: true): XmlElement;
export function onlyChild(root: XmlElement, name: string, ctx: ErrorContext, required: false): XmlElement | undefined;
export function onlyChild(
  root: XmlElement,
  name: string,
  ctx: ErrorContext,
  required: boolean,
): XmlElement | undefined {
  const found = childElements(root).filter((el) => el.name === name);
  const label = ctx.vm === undefined ? 'domain XML: ' : '';
  if (found.length > 1) throw new ValidationError(`${label}${name}: <${name}> appears ${found.length} times`, ctx);
  if (required && found.length === 0) throw new ValidationError(`${label}${name}: <${name}> is missing`, ctx);
  return found[0];
}

/** Canonical 8-4-4-4-12 hex UUID, in lower case. */
export function normalizeUuid(text: string, ctx: ErrorContext): string {
  if (!UUID_RE.test(text)) {
    const got = text === '' ? 'empty' : `got ${quote(text)}`;
    throw new ValidationError(`uuid: must be a canonical UUID, 8-4-4-4-12 hex digits (${got})`, ctx);
  }
  return text.toLowerCase();
}

/** An element or attribute name from the input, safe to put between < > in a message. */
export function shortName(name: string): string {
  return /^[\w.:-]{1,40}$/.test(name) ? name : quote(name);
}
