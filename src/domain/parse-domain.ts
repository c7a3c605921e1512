// Read what a VM asks of vfwire from its domain XML (the hook's stdin) or from the metadata
// element alone (`virsh metadata VM https://vfwire.dev/xmlns/1.0`).
//
// The vfwire element is found by namespace URI, never by prefix: libvirt writes
// <vfwire:net xmlns:vfwire="https://vfwire.dev/xmlns/1.0">, but a hand-edited domain may use any
// prefix or a default namespace, declared on <domain>, <metadata> or the element itself, and an
// element that merely looks like ours (prefix `vfwire` bound to another URI) is not ours.

import { ValidationError, type ErrorContext } from '../errors.js';
import { VFWIRE_NS, type DomainRequest, type InterfaceSpec } from './interface-spec.js';
import { deriveMac } from './mac.js';
import { hotplugSlots } from './hotplug-slots.js';
import { checkDistinctMacs, checkInterfaceAttrs, checkInterfaceCount } from './interface-schema.js';
import {
  childElements,
  enterScope,
  expandName,
  isNamespaceDeclaration,
  parseXml,
  ROOT_SCOPE,
  textOf,
  type NamespaceScope,
  type XmlElement,
} from './safe-xml.js';
import { quote } from '../quote.js';
import { normalizeUuid, onlyChild, readDomain, shortName } from './domain-identity.js';
import { METADATA_MAX_BYTES } from './limits.js';

/** Unqualified names in a namespace-stripped metadata element (see parseMetadataElement). */
const IMPLIED_SCOPE: NamespaceScope = new Map([...ROOT_SCOPE, ['', VFWIRE_NS]]);

/**
 * Name, UUID and vfwire interfaces of a domain. `interfaces` is null when the domain has no
 * vfwire element (not our VM). Throws ValidationError, one line naming VM and field.
 */
export function parseDomainXml(xml: string): DomainRequest {
  const { root, name, uuid, ctx } = readDomain(xml);
  const metadata = onlyChild(root, 'metadata', ctx, false);
  if (!metadata) return { name, uuid, interfaces: null };

  const metadataScope = enterScope(enterScope(ROOT_SCOPE, root), metadata);
  const ours: Array<{ el: XmlElement; scope: NamespaceScope }> = [];
  for (const el of childElements(metadata)) {
    const scope = enterScope(metadataScope, el);
    if (expandName(el, scope).ns === VFWIRE_NS) ours.push({ el, scope });
  }
  if (ours.length === 0) return { name, uuid, interfaces: null };
  if (ours.length > 1) {
    throw new ValidationError(`metadata: more than one element in namespace ${VFWIRE_NS} (found ${ours.length})`, ctx);
  }
  const [{ el, scope }] = ours as [{ el: XmlElement; scope: NamespaceScope }];

  // The whole domain is capped above; the element itself gets the same cap as on its own.
  if (el.span) {
    const bytes = Buffer.byteLength(xml.slice(el.span.start, el.span.end + 1), 'utf8');
    if (bytes > METADATA_MAX_BYTES) {
      throw new ValidationError(
        `metadata: vfwire element too large (${bytes} bytes; at most ${METADATA_MAX_BYTES})`,
        ctx,
      );
    }
  }
  const interfaces = readNet(el, scope, uuid, ctx);
  const slots = hotplugSlots(root);
  return slots ? { name, uuid, interfaces, slots } : { name, uuid, interfaces };
}

/**
 * The interfaces of a standalone vfwire metadata element. `virsh metadata VM URI` prints it
 * with the namespace stripped (`<net><interface vni="100"/></net>`: libvirt's
 * virXMLExtractNamespaceXML removes it), so an unqualified <net> is taken as vfwire's; a
 * qualified one (`<v:net xmlns:v="https://vfwire.dev/xmlns/1.0">`) must be in VFWIRE_NS.
 * `vm` is only used in messages; `uuid` derives the MACs the element does not give.
 */
export function parseMetadataElement(xml: string, vm: string, uuid: string): InterfaceSpec[] {
  const ctx: ErrorContext = { vm };
  const normalizedUuid = normalizeUuid(uuid, ctx);
  const root = parseXml(xml, { maxBytes: METADATA_MAX_BYTES, label: 'metadata', ctx });
  let scope = enterScope(ROOT_SCOPE, root);
  const { ns, prefix } = expandName(root, scope);
  if (ns === undefined && prefix === '') scope = enterScope(IMPLIED_SCOPE, root);
  if (expandName(root, scope).ns !== VFWIRE_NS) {
    throw new ValidationError(
      `metadata: <${shortName(root.name)}> is not in namespace ${VFWIRE_NS} (${ns === undefined ? 'undeclared prefix' : `it is in ${showUri(ns)}`})`,
      ctx,
    );
  }
  return readNet(root, scope, normalizedUuid, ctx);
}

/** The vfwire element, whose namespace is already checked: <net> with <interface> children. */
function readNet(net: XmlElement, scope: NamespaceScope, uuid: string, ctx: ErrorContext): InterfaceSpec[] {
  const { local } = expandName(net, scope);
  if (local !== 'net') {
    throw new ValidationError(`metadata: unknown vfwire element <${shortName(net.name)}> (expected <net>)`, ctx);
  }
  for (const name of net.attrs.keys()) {
    if (!isNamespaceDeclaration(name)) {
      throw new ValidationError(`net: ${shortName(name)}: unknown attribute (<net> takes none)`, ctx);
    }
  }
  checkNoText(net, 'net', ctx);

  const children = childElements(net);
  for (const el of children) {
    const name = expandName(el, enterScope(scope, el));
    if (name.ns !== VFWIRE_NS || name.local !== 'interface') {
      const where =
        name.ns === undefined ? 'no namespace' : name.ns === VFWIRE_NS ? 'the vfwire namespace' : showUri(name.ns);
      throw new ValidationError(
        `net: unexpected element <${shortName(el.name)}> in ${where} (expected <interface> in ${VFWIRE_NS})`,
        ctx,
      );
    }
  }
  // Count before looking further: never validate (or derive MACs for) more than the cap.
  checkInterfaceCount(children.length, ctx);

  const specs = children.map((el, index) => {
    const nested = childElements(el)[0];
    if (nested)
      throw new ValidationError(`interface ${index}: unexpected child element <${shortName(nested.name)}>`, ctx);
    checkNoText(el, `interface ${index}`, ctx);

    const raw: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [attr, value] of el.attrs) if (!isNamespaceDeclaration(attr)) raw[attr] = value;
    return { index, attrs: checkInterfaceAttrs(raw, index, ctx) };
  });

  checkDistinctMacs(
    specs.map((s) => s.attrs.mac),
    ctx,
  );
  return specs.map(({ index, attrs }): InterfaceSpec => {
    const spec: InterfaceSpec = {
      index,
      vni: attrs.vni,
      mac: attrs.mac ?? deriveMac(uuid, index),
      encrypt: attrs.encrypt,
    };
    if (attrs.mtu !== undefined) spec.mtu = attrs.mtu;
    if (attrs.pf !== undefined) spec.pf = attrs.pf;
    return spec;
  });
}

function checkNoText(el: XmlElement, field: string, ctx: ErrorContext): void {
  const text = textOf(el);
  if (text.trim() !== '') throw new ValidationError(`${field}: unexpected text ${quote(text.trim())}`, ctx);
}

/** A namespace URI from the input, for a message. */
function showUri(uri: string): string {
  return /^[\w.~:/?#@!$&'()*+,;=%-]{1,100}$/.test(uri) ? uri : quote(uri);
}
