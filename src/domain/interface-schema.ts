// The attributes of one vfwire <interface> element, validated with zod, and the one-line
// messages that name the VM, the interface, the field and the reason:
//   vm web1: interface 1: vni: must be an integer 1..16777215 (got "0")
// Shared by the parser (metadata from libvirt) and the renderer (what `vfwire vm set` writes).

import '../zod.js';
import * as z from 'zod';
import { ValidationError, type ErrorContext } from '../errors.js';
import { VNI_MAX, VNI_MIN, type EncryptMode } from './interface-spec.js';
import { macProblem, normalizeMac } from './mac.js';
import { quote } from '../quote.js';

const MAX_INTERFACES = 16;
/** Longest attribute value looked at; nothing valid comes close. */
const MAX_ATTR_CHARS = 64;
const MTU_MIN = 68;
const MTU_MAX = 65_535;
export const ATTRIBUTE_NAMES = ['vni', 'mac', 'mtu', 'encrypt', 'pf'] as const;

const TOO_LONG = 'too long';

/** A string attribute, cut short before any other check looks at it. */
const attr = (missing?: string) =>
  z
    .string(missing === undefined ? undefined : { error: missing })
    .max(MAX_ATTR_CHARS, { error: TOO_LONG, abort: true });

/** Decimal digits only, no sign, no leading zero, no spaces; then the range. */
function integerAttr(min: number, max: number) {
  const range = `must be an integer ${min}..${max}`;
  return attr(`required (${range})`)
    .regex(/^[1-9][0-9]{0,9}$/, { error: range, abort: true })
    .transform(Number)
    .pipe(z.number().int().min(min, { error: range }).max(max, { error: range }));
}

const macAttr = attr().transform((text, ctx) => {
  const mac = normalizeMac(text);
  const problem = mac === undefined ? 'must be six colon-separated hex octets like 52:54:00:12:34:56' : macProblem(mac);
  if (problem !== undefined || mac === undefined) {
    ctx.issues.push({ code: 'custom', message: problem ?? 'invalid', input: text });
    return z.NEVER;
  }
  return mac;
});

// No leading '-': the name ends up in an argv, where it must never read as an option.
const PF_RE = /^(?!-)[A-Za-z0-9_.-]{1,15}$/;
const pfAttr = attr()
  .regex(PF_RE, {
    error: 'must be a network interface name (1-15 of A-Z a-z 0-9 _ . -, not starting with -)',
    abort: true,
  })
  // Linux refuses these names too; they would also walk out of /sys/class/net/<pf>.
  .refine((name) => name !== '.' && name !== '..', { error: 'must be a network interface name, not "." or ".."' });

const interfaceAttrsSchema = z.strictObject({
  vni: integerAttr(VNI_MIN, VNI_MAX),
  mac: macAttr.optional(),
  mtu: integerAttr(MTU_MIN, MTU_MAX).optional(),
  encrypt: z.enum(['required', 'off'], { error: 'must be "required" or "off"' }).default('required'),
  pf: pfAttr.optional(),
});

export type InterfaceAttrs = z.output<typeof interfaceAttrsSchema>;
export type { EncryptMode };

/**
 * Validate the raw attributes of interface `index` (xmlns declarations already removed).
 * Throws one ValidationError for the most useful problem: an unknown attribute first (a typo
 * such as `vin` would otherwise show up as "vni: required"), then fields in schema order.
 */
export function checkInterfaceAttrs(raw: Record<string, string>, index: number, ctx: ErrorContext): InterfaceAttrs {
  const result = interfaceAttrsSchema.safeParse(raw);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0];
  throw new ValidationError(`interface ${index}: ${describeIssue(issue, raw)}`, ctx);
}

function describeIssue(issue: z.core.$ZodIssue | undefined, raw: Record<string, string>): string {
  if (issue === undefined) return 'invalid';
  if (issue.code === 'unrecognized_keys') {
    return `${attrName(issue.keys[0] ?? '?')}: unknown attribute (known: ${ATTRIBUTE_NAMES.join(', ')})`;
  }
  const field = String(issue.path[0] ?? '?');
  const value = Object.hasOwn(raw, field) ? raw[field] : undefined;
  if (value === undefined) return `${field}: ${issue.message}`;
  if (issue.message === TOO_LONG) return `${field}: too long (${value.length} characters; at most ${MAX_ATTR_CHARS})`;
  return `${field}: ${issue.message} (got ${quote(value)})`;
}

function attrName(name: string): string {
  return /^[A-Za-z_][\w.:-]{0,39}$/.test(name) ? name : quote(name);
}

/** Interface count: 1..MAX_INTERFACES. */
export function checkInterfaceCount(count: number, ctx: ErrorContext): void {
  if (count === 0) {
    throw new ValidationError(
      'interfaces: at least one <interface> is required (an empty <net/> asks for nothing)',
      ctx,
    );
  }
  if (count > MAX_INTERFACES) {
    throw new ValidationError(`interfaces: at most ${MAX_INTERFACES} (got ${count})`, ctx);
  }
}

/** Two interfaces of one VM must not share a MAC. `macs[i]` is interface i's (or undefined). */
export function checkDistinctMacs(macs: ReadonlyArray<string | undefined>, ctx: ErrorContext): void {
  const seen = new Map<string, number>();
  macs.forEach((mac, index) => {
    if (mac === undefined) return;
    const first = seen.get(mac);
    if (first !== undefined) {
      throw new ValidationError(`interface ${index}: mac: same as interface ${first} (${mac})`, ctx);
    }
    seen.set(mac, index);
  });
}
