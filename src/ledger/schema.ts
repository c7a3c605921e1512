// The zod schema of ledger.json, mirroring src/ledger/types.ts field for field. Objects are
// strict: an unknown field means the file is not what this vfwire wrote, so it is refused
// rather than silently dropped on the next save. test/ledger/schema.test.ts fails to compile
// when this schema and types.ts drift apart.

import '../zod.js';
import * as z from 'zod';
import { VfwireError } from '../errors.js';
import { LEDGER_SCHEMA, leaseKey, type LedgerData } from './types.js';
import { LOWER_UUID_RE } from '../identifiers.js';

// The ledger's undo commands are replayed as root: only the tools vfwire plans with may appear.
// `ip netns exec NS` runs anything: what it runs is checked the same way.
const UNDO_TOOLS = ['ip', 'bridge', 'tc', 'nft', 'ovs-vsctl'] as const;

function undoToolAllowed(argv: string[]): boolean {
  const inNetns = argv[0] === 'ip' && argv[1] === 'netns' && argv[2] === 'exec';
  const tool = inNetns ? argv[4] : argv[0];
  return (
    tool !== undefined &&
    (UNDO_TOOLS as readonly string[]).includes(tool) &&
    !(inNetns && tool === 'ip' && argv[5] === 'netns')
  );
}

const commandSchema = z.strictObject({
  argv: z
    .array(z.string())
    .min(1)
    .refine(undoToolAllowed, { message: `must run one of: ${UNDO_TOOLS.join(', ')}` }),
  stdin: z.string().optional(),
  inputShown: z.boolean().optional(),
});

const count = z.number().int().nonnegative();

const leaseSchema = z.strictObject({
  key: z.string().min(1),
  vm: z.string().min(1),
  // A VM marker's file name (vm-markers.ts): never a path.
  uuid: z.string().regex(LOWER_UUID_RE, 'must be a lower-case UUID'),
  index: count,
  pf: z.string().min(1),
  vf: count,
  pci: z.string().min(1),
  vfDev: z.string().optional(),
  rep: z.string().min(1),
  vni: count,
  mac: z.string().min(1),
  mtu: count,
  since: z.string().min(1),
  state: z.enum(['preparing', 'active']),
  attach: z.enum(['hostdev', 'ethernet', 'netns']),
  attachedAt: z.string().optional(),
  undo: z.array(commandSchema),
});

const vniSchema = z.strictObject({
  vni: count,
  members: z.array(z.string()),
  peers: z.array(z.string()),
  undo: z.array(commandSchema),
  tc: z
    .strictObject({
      netns: z.string().optional(),
      underlayAddress: z.string(),
      policy: z.enum(['skip_hw', 'none']).optional(),
    })
    .optional(),
  ovs: z.strictObject({ bridge: z.string().min(1), runDir: z.string().min(1) }).optional(),
});

const saFactsSchema = z.strictObject({
  dir: z.enum(['out', 'in']),
  src: z.string(),
  dst: z.string(),
  spi: count,
  reqid: count,
});

const keyId = z.string().regex(/^[0-9a-f]{16}$/);

const peerSaSchema = z.strictObject({
  key: keyId.optional(),
  epoch: count,
  sas: z.array(saFactsSchema),
  lookahead: z.array(saFactsSchema).optional(),
  confirmed: z.number().int().nonnegative().optional(),
  uplink: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,15}$/)
    .optional(),
  installedAt: z.string(),
  undo: z.array(commandSchema),
  rotating: z
    .strictObject({
      key: keyId.optional(),
      epoch: count,
      phase: z.enum(['receiving', 'sending']),
      sas: z.array(saFactsSchema),
    })
    .optional(),
});

const ipsecSchema = z.strictObject({
  peers: z.record(z.string(), peerSaSchema),
  used: z.array(z.string().regex(/^[0-9a-f]{16}:0x[0-9a-f]{8}$/)),
  tcRulesDown: z.literal(true).optional(),
});

export const ledgerSchema = z
  .strictObject({
    // number, not z.literal, and a refine that is not a type predicate (`: boolean`): the
    // output type must stay `number` as in types.ts.
    schema: z
      .number()
      .int()
      .refine((v): boolean => v === LEDGER_SCHEMA, { message: `expected ledger schema ${LEDGER_SCHEMA}` }),
    bootId: z.string().optional(),
    leases: z.record(z.string(), leaseSchema),
    vnis: z.record(z.string(), vniSchema),
    ipsec: ipsecSchema.optional(),
  })
  .superRefine((ledger, ctx) => {
    // Map keys are what callers look entries up by; an entry filed under another key would
    // be invisible to release and gc.
    for (const [key, lease] of Object.entries(ledger.leases)) {
      const expected = leaseKey(lease.uuid, lease.index);
      if (key !== lease.key || key !== expected) {
        ctx.addIssue({
          code: 'custom',
          path: ['leases', key, 'key'],
          message: `lease filed under "${key}" has key "${lease.key}", expected "${expected}"`,
        });
      }
    }
    for (const [key, vni] of Object.entries(ledger.vnis)) {
      if (key !== String(vni.vni)) {
        ctx.addIssue({ code: 'custom', path: ['vnis', key, 'vni'], message: `VNI filed under "${key}" is ${vni.vni}` });
      }
    }
    // VNI entry iff it has members, every member a lease on that VNI, every lease a member,
    // and no VF leased twice: release and gc rely on all four.
    const used = new Map<string, string>();
    for (const [key, lease] of Object.entries(ledger.leases)) {
      if (!ledger.vnis[String(lease.vni)]?.members.includes(key)) {
        ctx.addIssue({
          code: 'custom',
          path: ['leases', key, 'vni'],
          message: `lease is not a member of VNI ${lease.vni}`,
        });
      }
      const vf = `${lease.pf}/${lease.vf}`;
      if (used.has(vf))
        ctx.addIssue({
          code: 'custom',
          path: ['leases', key, 'vf'],
          message: `${vf} is also leased by ${used.get(vf)}`,
        });
      used.set(vf, key);
    }
    for (const [key, vni] of Object.entries(ledger.vnis)) {
      if (vni.members.length === 0)
        ctx.addIssue({
          code: 'custom',
          path: ['vnis', key, 'members'],
          message: 'a VNI without members must not be kept',
        });
      for (const m of vni.members) {
        if (ledger.leases[m]?.vni !== vni.vni)
          ctx.addIssue({
            code: 'custom',
            path: ['vnis', key, 'members'],
            message: `member ${m} is not a lease on VNI ${vni.vni}`,
          });
      }
    }
  }) satisfies z.ZodType<LedgerData>;

/** What the problem is, on one line: `leases.<key>.vf: Invalid input: ...; ...`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(top level)'}: ${issue.message}`)
    .join('; ');
}

/**
 * Checks parsed JSON from `file` and returns it as ledger data. Refuses (throws VfwireError)
 * a ledger from a newer vfwire, or one that does not match the schema.
 */
export function decodeLedger(raw: unknown, file: string): LedgerData {
  const schema = isObject(raw) ? raw.schema : undefined;
  if (typeof schema === 'number' && schema > LEDGER_SCHEMA) {
    throw new VfwireError(
      `${file} was written by a newer vfwire (ledger schema ${schema}, this vfwire reads up to ${LEDGER_SCHEMA}); ` +
        'upgrade vfwire on this host',
    );
  }
  const result = ledgerSchema.safeParse(raw);
  if (!result.success) {
    throw new VfwireError(`${file} does not match the ledger schema: ${describeIssues(result.error)}; ${REPAIR_HINT}`);
  }
  return result.data;
}

/** Said whenever the ledger is refused: vfwire never rewrites a file it cannot read. */
export const REPAIR_HINT = 'vfwire leaves it untouched; inspect or move it aside, then run `vfwire gc` to repair it';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
