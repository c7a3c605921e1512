// `vfwire doctor` on a sim host: all green as built, then each precondition broken in turn.

import { expect } from 'chai';
import { testLease } from '../helpers/inputs.js';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { CheckResult } from '../../src/check-result.js';
import { withLedger } from '../../src/ledger/store.js';
import { writeSimDevlinkState } from '../../src/sim/devlink-emulator.js';
import { vfwire } from '../helpers/cli.js';
import { admissionRemoveScript, admissionScript } from '../../src/overlay/admission.js';
import { downTestSim, editConfig, runner, upTestSim, type TestSim } from '../helpers/sim.js';

describe('vfwire doctor', function () {
  this.timeout(60_000);
  let sim: TestSim | undefined;
  before(async () => {
    sim = await upTestSim(2);
  });
  after(() => downTestSim(sim));

  const doctor = async (env: Record<string, string> = {}) => {
    const r = await vfwire(['--config', sim!.a.configPath, 'doctor', '--json'], env);
    return { code: r.code, results: JSON.parse(r.stdout) as CheckResult[] };
  };
  const status = (results: CheckResult[], check: string) => results.find((r) => r.check === check)?.status;
  const pciDir = () => join(sim!.a.dir, 'sys/bus/pci/devices', sim!.a.pfPci);

  it('passes every check on a freshly built sim host', async () => {
    const { code, results } = await doctor();
    expect(
      results.filter((r) => r.status !== 'pass'),
      JSON.stringify(results),
    ).to.deep.equal([]);
    expect(results.map((r) => r.check)).to.include.members([
      'enp3s0f0np0: SR-IOV',
      'enp3s0f0np0: eswitch',
      'enp3s0f0np0: flow steering',
      'enp3s0f0np0: representors',
    ]);
    expect(code).to.equal(0);
  });

  it('fails, with the fix, on legacy mode and on SR-IOV off', async () => {
    await writeSimDevlinkState(pciDir(), { mode: 'legacy', flow_steering_mode: 'smfs' });
    writeFileSync(join(pciDir(), 'sriov_numvfs'), '0\n');
    const { code, results } = await doctor();
    expect(code).to.equal(1);
    expect(status(results, 'enp3s0f0np0: eswitch')).to.equal('fail');
    expect(status(results, 'enp3s0f0np0: SR-IOV')).to.equal('fail');
    expect(status(results, 'enp3s0f0np0: flow steering')).to.equal('warn');
    expect(results.find((r) => r.check === 'enp3s0f0np0: eswitch')!.fix).to.equal('vfwire host setup');
    await writeSimDevlinkState(pciDir(), { mode: 'switchdev', flow_steering_mode: 'dmfs' });
    writeFileSync(join(pciDir(), 'sriov_numvfs'), '2\n');
  });

  it('tc-flower: rules the ledger implies but the kernel lacks; failover: no bond', async () => {
    editConfig(sim!.a.configPath, (doc) => {
      doc.overlay = 'tc-flower';
      doc.failover = { mode: 'active-backup' };
    });
    const key = '00000000-0000-4000-8000-0000000000d1/0';
    await withLedger(join(sim!.a.dir, 'state'), async (txn) => {
      txn.data.leases[key] = testLease(key, 'flow', { mac: '52:54:00:00:00:d1' });
      txn.data.vnis['100'] = {
        vni: 100,
        members: [key],
        peers: ['198.18.0.2'],
        undo: [],
        tc: { netns: sim!.a.netns, underlayAddress: '198.18.0.1' },
      };
      await txn.save();
    });
    await runner.run({ argv: ['ip', '-n', sim!.a.netns, 'neigh', 'flush', 'dev', 'enp3s0f0np0'] });
    const { code, results } = await doctor();
    expect(code).to.equal(1);
    const rules = results.find((r) => r.check === 'tc-flower rules')!;
    expect(rules.status).to.equal('fail');
    expect(rules.detail).to.match(/^4 of 4 not in hardware: .*missing/);
    // The peer's neighbour (flushed above): unresolved until something talks to it, then REACHABLE.
    const unresolved = results.find((r) => r.check === 'neighbour of 198.18.0.2');
    expect(unresolved?.status, JSON.stringify(unresolved)).to.equal('fail');
    expect(unresolved!.detail).to.match(
      /^on enp3s0f0np0: (no entry|INCOMPLETE|FAILED); the NIC keeps encap rules to it in its slow path/,
    );
    await runner.run({ argv: ['ip', 'netns', 'exec', sim!.a.netns, 'ping', '-c', '1', '-W', '2', '198.18.0.2'] });
    expect((await doctor()).results.find((r) => r.check === 'neighbour of 198.18.0.2')).to.include({
      status: 'pass',
      detail: 'on enp3s0f0np0: REACHABLE',
    });
    expect(results.find((r) => r.check === 'VF LAG')).to.include({
      status: 'fail',
      detail: 'ip link show enp3s0f0np0: not a bond (veth)',
    });
    await withLedger(join(sim!.a.dir, 'state'), async (txn) => {
      txn.data.leases = {};
      txn.data.vnis = {};
      await txn.save();
    });
    editConfig(sim!.a.configPath, (doc) => {
      delete doc.overlay;
      delete doc.failover;
    });
  });

  it('a live VNI without its underlay admission fails; with it, names the peers it admits', async () => {
    const key = '00000000-0000-4000-8000-0000000000d2/0';
    await withLedger(join(sim!.a.dir, 'state'), async (txn) => {
      txn.data.vnis['100'] = { vni: 100, members: [key], peers: ['198.18.0.2'], undo: [] };
      txn.data.leases[key] = testLease(key, 'adm', { mac: '52:54:00:00:00:d2' });
      await txn.save();
    });
    const check = async () => (await doctor()).results.find((r) => r.check === 'underlay admission')!;
    expect(await check()).to.include({
      status: 'fail',
      detail: 'no input/output hooks; VNI(s) 100 take VXLAN from any address and send it in clear',
    });
    const nftIn = ['ip', 'netns', 'exec', sim!.a.netns, 'nft', '-f', '-'];
    await runner.run({ argv: nftIn, stdin: admissionScript(100, [{ address: '198.18.0.2' }]) });
    try {
      expect(await check()).to.include({ status: 'pass', detail: 'VNI 100 from 198.18.0.2' });
    } finally {
      await runner.run({ argv: nftIn, stdin: admissionRemoveScript(100) });
      await withLedger(join(sim!.a.dir, 'state'), async (txn) => {
        txn.data.leases = {};
        txn.data.vnis = {};
        await txn.save();
      });
    }
  });

  it('bridge overlay: each live VNI has its bridge up with its VXLAN device and every member in it', async () => {
    const key = '00000000-0000-4000-8000-0000000000d3/0';
    const ns = sim!.a.netns;
    await withLedger(join(sim!.a.dir, 'state'), async (txn) => {
      txn.data.vnis['100'] = { vni: 100, members: [key], peers: ['198.18.0.2'], undo: [] };
      txn.data.leases[key] = testLease(key, 'br', { mac: '52:54:00:00:00:d3' });
      await txn.save();
    });
    const check = async () => (await doctor()).results.find((r) => r.check === 'bridge overlay')!;
    const ipn = (...args: string[]) => runner.run({ argv: ['ip', '-n', ns, ...args] });
    try {
      expect(await check()).to.include({
        status: 'fail',
        detail: 'VNI 100: no vfwbr100, no vfwvx100, enp3s0f0r0 is in no bridge',
      });
      await ipn('link', 'add', 'vfwbr100', 'type', 'bridge');
      await ipn('link', 'add', 'vfwvx100', 'type', 'vxlan', 'id', '100', 'dstport', '4789', 'local', '198.18.0.1');
      await ipn('link', 'set', 'vfwvx100', 'master', 'vfwbr100');
      await ipn('link', 'set', 'enp3s0f0r0', 'master', 'vfwbr100');
      expect(await check()).to.include({ status: 'fail', detail: 'VNI 100: vfwbr100 is down' });
      await ipn('link', 'set', 'vfwbr100', 'up');
      expect(await check()).to.include({ status: 'pass', detail: 'VNI 100: vfwbr100, 1 member(s)' });
    } finally {
      await ipn('link', 'set', 'enp3s0f0r0', 'nomaster').catch(() => undefined);
      for (const dev of ['vfwvx100', 'vfwbr100']) await ipn('link', 'del', dev).catch(() => undefined);
      await withLedger(join(sim!.a.dir, 'state'), async (txn) => {
        txn.data.leases = {};
        txn.data.vnis = {};
        await txn.save();
      });
    }
  });

  it('a host without nft fails the admission check, even with no VM running: every start needs it', async () => {
    // /usr/sbin without nft: the tools doctor runs, linked one by one.
    const bin = mkdtempSync(join(tmpdir(), 'vfwt-nonft-'));
    try {
      for (const tool of ['ip', 'tc', 'bridge', 'devlink', 'ethtool'])
        symlinkSync(`/usr/sbin/${tool}`, join(bin, tool));
      const { results } = await doctor({ PATH: `${bin}:${dirname(process.execPath)}:/usr/bin:/bin` });
      const check = results.find((r) => r.check === 'underlay admission');
      expect(check, JSON.stringify(results)).to.include({ status: 'fail' });
      expect(check!.fix).to.match(/^apt-get install nftables/);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('with IPsec on: ESP offload, the xfrm form the kernel and iproute2 allow, and the SAs to each peer', async () => {
    editConfig(sim!.a.configPath, (doc) => {
      doc.ipsec = { mode: 'static', key_dir: join(sim!.a.dir, 'keys') };
    });
    const { code, results } = await doctor();
    expect(code).to.equal(1);
    expect(status(results, 'enp3s0f0np0: ESP offload')).to.equal('fail');
    expect(status(results, 'IPsec to sim-b')).to.equal('fail');
    expect(results.find((r) => r.check === 'IPsec to sim-b')!.fix).to.equal('vfwire ipsec up');
    // Debian 12's ip (6.1) cannot say `offload packet`; bookworm-backports' can.
    const old = results.find((r) => r.check === 'xfrm form')!;
    expect(old).to.include({
      status: 'fail',
      detail:
        "ipsec.offload: iproute2 6.1 cannot say 'offload packet' (needs 6.2): apt-get install -t bookworm-backports iproute2",
    });
    const backports = await doctor({ PATH: `/opt/vfwire/iproute2/bin:${process.env.PATH}` });
    expect(status(backports.results, 'xfrm form')).to.equal('pass');
    expect(backports.results.find((r) => r.check === 'xfrm form')!.detail).to.match(/^offload packet; /);
  });
});
