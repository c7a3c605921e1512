// The metadata element that `vfwire vm set` stores with
//   virsh metadata VM https://vfwire.dev/xmlns/1.0 --key vfwire --set '<net>...</net>'
// It carries no namespace: virsh binds the element to the URI under the --key prefix. The values
// are checked with the same schema the parser uses, so what is written will be accepted back.

import { type ErrorContext } from '../errors.js';
import {
  ATTRIBUTE_NAMES,
  checkDistinctMacs,
  checkInterfaceAttrs,
  checkInterfaceCount,
  type InterfaceAttrs,
} from './interface-schema.js';
import { type EncryptMode } from './interface-spec.js';

export interface MetadataInterface {
  vni: number;
  mac?: string;
  mtu?: number;
  encrypt?: EncryptMode;
  pf?: string;
}

/**
 * `<net><interface vni="100" mac="..."/></net>`, one line, attributes in a fixed order and
 * only those given (no defaults filled in; MACs lower-cased). Throws ValidationError naming the
 * interface and field, as parsing the result would. `ctx` (e.g. `{ vm }`) prefixes messages.
 */
export function renderMetadata(ifaces: MetadataInterface[], ctx: ErrorContext = {}): string {
  checkInterfaceCount(ifaces.length, ctx);
  const checked = ifaces.map((iface, index) => {
    const raw: Record<string, string> = {};
    for (const name of ATTRIBUTE_NAMES) {
      const value = iface[name];
      if (value !== undefined) raw[name] = String(value);
    }
    return { raw, attrs: checkInterfaceAttrs(raw, index, ctx) };
  });
  checkDistinctMacs(
    checked.map((c) => c.attrs.mac),
    ctx,
  );

  const elements = checked.map(({ raw, attrs }) => {
    const parts = ATTRIBUTE_NAMES.filter((name) => raw[name] !== undefined).map(
      (name) => `${name}="${escapeAttr(String(attrs[name as keyof InterfaceAttrs]))}"`,
    );
    return `<interface ${parts.join(' ')}/>`;
  });
  return `<net>${elements.join('')}</net>`;
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  // Literal whitespace in an attribute is normalized to a space by XML parsers.
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};

/** Escape a value for a double-quoted XML attribute. */
export function escapeAttr(value: string): string {
  return value.replace(/[&<>"'\t\n\r]/g, (c) => ESCAPES[c] ?? c);
}
