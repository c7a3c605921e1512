import { expect } from 'chai';
import type { z } from 'zod';
import { VfwireError } from '../../src/errors.js';
import { decodeLedger, ledgerSchema } from '../../src/ledger/schema.js';
import { emptyLedger, LEDGER_SCHEMA, leaseKey, type LedgerData } from '../../src/ledger/types.js';

// Compile-time: the schema's output type and types.ts are the same type, in both directions.
// A field added to one and not the other breaks `npx tsc`.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const schemaMirrorsTypes: Same<z.infer<typeof ledgerSchema>, LedgerData> = true;

describe('ledger schema', () => {
  it('mirrors src/ledger/types.ts', () => {
    expect(schemaMirrorsTypes).to.equal(true);
  });

  it('accepts an empty ledger and a lease without the optional vfDev', () => {
    expect(decodeLedger(emptyLedger(), 'ledger.json')).to.deep.equal(emptyLedger());
    const uuid = '3f2a6c1e-8d4b-4e0a-9c7d-2b1f5e6a7c80';
    const data: LedgerData = {
      schema: LEDGER_SCHEMA,
      leases: {
        [leaseKey(uuid, 1)]: {
          key: leaseKey(uuid, 1),
          vm: 'web1',
          uuid,
          index: 1,
          pf: 'enp59s0f0np0',
          vf: 5,
          pci: '0000:3b:00.7',
          rep: 'enp59s0f0r5',
          vni: 100,
          mac: '52:54:00:12:34:56',
          mtu: 9000,
          since: '2025-01-01T00:00:00.000Z',
          state: 'active',
          attach: 'hostdev',
          undo: [{ argv: ['ip', '-batch', '-'], stdin: 'link set dev enp59s0f0r5 nomaster\n' }],
        },
      },
      vnis: { '100': { vni: 100, members: [leaseKey(uuid, 1)], peers: [], undo: [] } },
    };
    expect(decodeLedger(JSON.parse(JSON.stringify(data)), 'ledger.json')).to.deep.equal(data);
  });

  it('names the file and each bad field', () => {
    const bad = { schema: LEDGER_SCHEMA, leases: {}, vnis: { '100': { vni: 200, members: [], peers: [], undo: [] } } };
    expect(() => decodeLedger(bad, '/var/lib/vfwire/ledger.json'))
      .to.throw(VfwireError)
      .with.property('message')
      .that.contains('/var/lib/vfwire/ledger.json')
      .and.contains('vnis.100.vni');
    expect(() => decodeLedger([], 'ledger.json')).to.throw(VfwireError, /does not match the ledger schema/);
    expect(() => decodeLedger({ ...emptyLedger(), schema: 0 }, 'ledger.json')).to.throw(VfwireError, /schema/);
  });

  it("replays only vfwire's own tools, also behind ip netns exec", () => {
    const withUndo = (argv: string[]) => ({
      schema: LEDGER_SCHEMA,
      leases: {},
      vnis: {},
      ipsec: {
        used: [],
        peers: {
          b: {
            epoch: 1,
            sas: [],
            installedAt: '2025-01-01T00:00:00.000Z',
            undo: [{ argv, stdin: 'x\n', inputShown: true }],
          },
        },
      },
    });
    for (const ok of [
      ['nft', '-f', '-'],
      ['ip', 'netns', 'exec', 'vfwsim-a', 'nft', '-f', '-'],
      ['tc', 'filter', 'del'],
    ]) {
      expect(() => decodeLedger(withUndo(ok), 'ledger.json'), ok.join(' ')).not.to.throw();
    }
    for (const bad of [
      ['sh', '-c', 'id'],
      ['ip', 'netns', 'exec', 'vfwsim-a', 'sh', '-c', 'id'],
      ['ip', 'netns', 'exec', 'a', 'ip', 'netns', 'exec', 'b', 'sh'],
      ['ip', 'netns', 'exec', 'a'],
    ]) {
      expect(() => decodeLedger(withUndo(bad), 'ledger.json'), bad.join(' ')).to.throw(VfwireError, /must run one of/);
    }
  });
});
