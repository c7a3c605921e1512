// What gc finds on the OVS bridge that no lease accounts for (overlay/ovs/leftovers.ts), from a
// ledger of real OVS plans; the kernel lab runs gc on Open vSwitch after a hook killed mid-start.

import { expect } from 'chai';
import { VfwireError } from '../../src/errors.js';
import type { Command } from '../../src/exec/step.js';
import { planGc } from '../../src/gc/plan-gc.js';
import { recordPlan } from '../../src/ledger/record.js';
import { emptyLedger } from '../../src/ledger/types.js';
import { ovsLeftovers, parseCookies, planOvsLeftovers } from '../../src/overlay/ovs/leftovers.js';
import { ovsHostOf } from '../../src/overlay/ovs/settings.js';
import { planPrepare } from '../../src/plan/prepare.js';
import { config, inventory, pf, REAL_CONFIG, request, UUID1 } from '../helpers/inputs.js';

const CFG = config(REAL_CONFIG + 'overlay: ovs\n');
const HOST = ovsHostOf(CFG);
const LONG_AGO = new Date('2026-01-01T00:00:00Z');

// ovs-ofctl -O OpenFlow14 dump-flows as OVS 3.1 prints it (stats on, cookie first).
const DUMP = [
  ' cookie=0x64, duration=12.503s, table=0, n_packets=3, n_bytes=126, priority=110,arp,in_port=r0,arp_sha=52:54:00:00:00:01 actions=load:0x64->NXM_NX_REG0[],load:0x1->NXM_NX_REG1[],resubmit(,1)',
  ' cookie=0x12d, duration=2.1s, table=1, n_packets=0, n_bytes=0, priority=10,reg0=0x12d,reg1=0x1 actions=output:r9',
  ' cookie=0x0, duration=99.0s, table=0, n_packets=0, n_bytes=0, priority=0 actions=drop',
  ' cookie=0x64, duration=12.503s, table=1, n_packets=0, n_bytes=0, priority=100,reg0=0x64,dl_dst=52:54:00:00:00:01 actions=output:r0',
].join('\n');

function ledgerOfVni100() {
  const ledger = emptyLedger();
  recordPlan(ledger, planPrepare(request('vm1', UUID1, [{ vni: 100 }]), inventory(pf(4)), ledger, CFG, LONG_AGO));
  return ledger;
}

describe('OVS leftovers for gc', () => {
  it('reads the distinct non-zero cookies of a dump, in hex', () => {
    expect(parseCookies(DUMP)).to.deep.equal([100, 301]);
    expect(parseCookies('')).to.deep.equal([]);
  });

  it("removes ports no lease of this bridge holds and rules of VNIs the ledger does not record here; never the tunnel port, a lease's port or a recorded VNI's rules", () => {
    const ledger = ledgerOfVni100();
    const rep = Object.values(ledger.leases)[0]!.rep;
    const left = planOvsLeftovers(HOST, { ports: ['vfwtun', rep, 'r9'], cookies: [100, 301] }, ledger);
    expect(left.map((l) => l.line)).to.deep.equal([
      'r9: port of vfwovs without a lease',
      'rules of vfwovs under cookie 0x12d (VNI 301): not in the ledger',
    ]);
    expect(left[0]!.command.argv.slice(-4)).to.deep.equal(['--if-exists', 'del-port', 'vfwovs', 'r9']);
    expect(left[1]!.command.argv.slice(-3)).to.deep.equal([
      'del-flows',
      `unix:${HOST.runDir}/vfwovs.mgmt`,
      'cookie=0x12d/-1',
    ]);
  });

  it('a VNI recorded on another bridge (the config changed with leases alive) is no alibi for rules or ports here', () => {
    const ledger = ledgerOfVni100();
    ledger.vnis['100']!.ovs = { bridge: 'other', runDir: HOST.runDir };
    const rep = Object.values(ledger.leases)[0]!.rep;
    const left = planOvsLeftovers(HOST, { ports: ['vfwtun', rep], cookies: [100] }, ledger);
    expect(left.map((l) => l.line)).to.deep.equal([
      `${rep}: port of vfwovs without a lease`,
      'rules of vfwovs under cookie 0x64 (VNI 100): not in the ledger',
    ]);
  });

  it('gc plans them after the releases, and tells them as leftovers', () => {
    const ledger = ledgerOfVni100();
    const extra: Command = { argv: ['ovs-vsctl', 'del-port', 'vfwovs', 'r9'] };
    const plan = planGc({
      ledger,
      running: new Set(),
      links: [],
      notBefore: new Date(),
      overlayLeftovers: [{ line: 'r9: port of vfwovs without a lease', command: extra }],
    });
    expect(plan.staleLeases).to.have.length(1);
    expect(plan.commands.at(-1)).to.deep.equal(extra);
    expect(plan.leftovers).to.deep.equal(['r9: port of vfwovs without a lease']);
  });

  it('no bridge is nothing to collect; a bridge that cannot be read frees nothing, saying how to fix it', async () => {
    const asked: string[][] = [];
    const none = {
      run: (c: Command) => {
        asked.push(c.argv);
        return Promise.resolve({ stdout: '{"data":[],"headings":["name"]}', stderr: '' });
      },
    };
    expect(await ovsLeftovers(HOST, none, emptyLedger())).to.deep.equal([]);
    expect(asked).to.have.length(1);
    const down = { run: () => Promise.reject(new Error('database connection failed (Connection refused)')) };
    const err = await ovsLeftovers(HOST, down, emptyLedger()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(VfwireError);
    expect((err as Error).message).to.match(
      /^cannot read vfwire's OVS bridge vfwovs .* so gc frees nothing: start Open vSwitch/,
    );
  });
});
