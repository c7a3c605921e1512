import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { checkTcOffload, parseTcFilterShow } from '../../src/overlay/tc-flower/offload-check.js';
import {
  hasIngressQdisc,
  parseTcHostLink,
  planTcHost,
  renderTcHost,
  renderTcHostCheck,
} from '../../src/overlay/tc-flower/host-device.js';
import { isTcSyncStep, planTcJoin, planTcLeave } from '../../src/overlay/tc-flower/membership.js';
import {
  MLX5_MAX_FWD_DESTS,
  vfBits,
  type TcFlowerHost,
  type TcMember,
  type TcVniState,
} from '../../src/overlay/tc-flower/model.js';
import { tcVniRules } from '../../src/overlay/tc-flower/rules.js';
import { formatCommand, type Command, type Step } from '../../src/exec/step.js';
import { expectGolden, FIXTURES } from '../helpers/golden.js';

const A = '192.168.80.2';
const B = '192.168.80.3';
const C = '192.168.80.4';
const HOST_A: TcFlowerHost = { underlayAddress: A };
const HOST_B: TcFlowerHost = { underlayAddress: B };
const WEB1: TcMember = {
  leaseKey: '1f9d3c2e-4b5a-4c6d-8e7f-0a1b2c3d4e5f/0',
  rep: 'enp3s0f0r0',
  mac: '52:54:00:12:34:01',
  pci: '0000:03:00.2',
};
const WEB2: TcMember = {
  leaseKey: '2a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d/0',
  rep: 'enp3s0f0r1',
  mac: '52:54:00:12:34:02',
  pci: '0000:03:00.3',
};
const OVERLAY_MTU = 9216 - 50;

const fixture = (name: string) => readFileSync(join(FIXTURES, 'tc', name), 'utf8');
const lines = (steps: Step[]) => steps.map((s) => formatCommand(s.do) + '\n').join('');
const empty = (vni: number, peers: string[]): TcVniState => ({ vni, peers, members: [] });

describe('tc-flower overlay plans', () => {
  it('one VF, one peer, host A: host state, then the lease (golden)', () => {
    const text =
      '# host setup\n' +
      lines(renderTcHost(HOST_A, OVERLAY_MTU)) +
      '# web1 joins VNI 100\n' +
      lines(planTcJoin(HOST_A, empty(100, [B]), [WEB1]));
    expectGolden('tc/one-vf-one-peer-host-a.txt', text);
  });

  it('one VF, one peer, host B mirrors host A: same VNI, addresses swapped (golden)', () => {
    const vm: TcMember = {
      leaseKey: '3c4d5e6f-0000-4000-8000-000000000001/0',
      rep: 'enp3s0f0r0',
      mac: '52:54:00:56:78:01',
      pci: '0000:03:00.2',
    };
    const steps = planTcJoin(HOST_B, empty(100, [A]), [vm]);
    expectGolden(
      'tc/one-vf-one-peer-host-b.txt',
      '# host setup\n' + lines(renderTcHost(HOST_B, OVERLAY_MTU)) + '# vm joins VNI 100\n' + lines(steps),
    );
    const encap = steps.find((s) => s.device === 'enp3s0f0r0 pref 3 handle 0x1')!.do.argv.join(' ');
    expect(encap).to.include(
      `tunnel_key set id 100 src_ip ${B} dst_ip ${A} dst_port 4789 nocsum action mirred egress redirect dev vfwvxlan`,
    );
    const decap = steps.find((s) => s.device === 'vfwvxlan pref 1 handle 0x30200')!.do.argv.join(' ');
    expect(decap).to.include(
      `enc_key_id 100 enc_src_ip ${A} enc_dst_ip ${B} enc_dst_port 4789 dst_mac 52:54:00:56:78:01 action tunnel_key unset action mirred egress redirect dev enp3s0f0r0`,
    );
  });

  it('two VFs on one VNI with two peers: BUM replicated to the other VF and both peers (golden)', () => {
    const first = planTcJoin(HOST_A, empty(100, [B, C]), [WEB1]);
    const second = planTcJoin(HOST_A, { vni: 100, peers: [B, C], members: [WEB1] }, [WEB2]);
    expectGolden(
      'tc/two-vfs-two-peers.txt',
      '# web1 joins VNI 100 (peers B, C)\n' + lines(first) + '# web2 joins VNI 100\n' + lines(second),
    );

    const bum = second.find((s) => s.device === 'enp3s0f0r1 pref 2 handle 0x1')!.do.argv.join(' ');
    expect(bum).to.match(
      /dst_mac 01:00:00:00:00:00\/01:00:00:00:00:00 action mirred egress mirror dev enp3s0f0r0 action tunnel_key set id 100 src_ip 192\.168\.80\.2 dst_ip 192\.168\.80\.3 .* action mirred egress mirror dev vfwvxlan action tunnel_key set id 100 src_ip 192\.168\.80\.2 dst_ip 192\.168\.80\.4 .* action mirred egress redirect dev vfwvxlan$/,
    );
    // web1's BUM list and the decap BUM lists are rewritten in place, not deleted and re-added.
    expect(second.filter((s) => s.kind === 'tcf-sync-replace').map((s) => s.device)).to.deep.equal([
      'vfwvxlan pref 2 handle 0x6400',
      'vfwvxlan pref 2 handle 0x6401',
    ]);
    expect(second.filter((s) => s.kind === 'tcf-sync-add').map((s) => s.device)).to.deep.equal([
      'enp3s0f0r0 pref 1 handle 0x303',
      'enp3s0f0r0 pref 2 handle 0x1',
      'enp3s0f0r1 pref 1 handle 0x302',
      'enp3s0f0r1 pref 2 handle 0x1',
    ]);
  });

  it("teardown: the VNI-wide rewrite first, then the leaving lease's recorded undo in reverse (golden)", () => {
    const both: TcVniState = { vni: 100, peers: [B, C], members: [WEB1, WEB2] };
    const recorded = (m: TcMember, before: TcVniState) =>
      planTcJoin(HOST_A, before, [m])
        .filter((s) => s.owner.kind === 'lease' && s.owner.key === m.leaseKey && s.undo)
        .map((s) => s.undo!);
    const undo1 = recorded(WEB1, empty(100, [B, C]));
    const undo2 = recorded(WEB2, { ...both, members: [WEB1] });
    const release = (sync: Step[], undo: Command[]) =>
      [...sync.map((s) => s.do), ...[...undo].reverse()].map((c) => formatCommand(c) + '\n').join('');
    const leave1 = planTcLeave(HOST_A, both, [WEB1.leaseKey]);
    const leave2 = planTcLeave(HOST_A, { ...both, members: [WEB2] }, [WEB2.leaseKey]);
    expectGolden(
      'tc/teardown.txt',
      '# web1 leaves (web2 stays)\n' +
        release(leave1, undo1) +
        '# web2 leaves, the last member\n' +
        release(leave2, undo2),
    );
    // Nothing on the leaving representor is touched by the rewrite: its qdisc takes its rules.
    expect(leave1.map((s) => s.device).filter((d) => d.startsWith('enp3s0f0r0 '))).to.deep.equal([]);
    expect(leave2.map((s) => s.kind)).to.deep.equal(['tcf-sync-del', 'tcf-sync-del']);
  });

  it('every do has its exact undo', () => {
    const steps = [
      ...renderTcHost(HOST_A, OVERLAY_MTU),
      ...planTcJoin(HOST_A, empty(100, [B, C]), [WEB1]),
      ...planTcJoin(HOST_A, { vni: 100, peers: [B, C], members: [WEB1] }, [WEB2]),
      ...planTcLeave(HOST_A, { vni: 100, peers: [B, C], members: [WEB1, WEB2] }, [WEB1.leaseKey]),
    ];
    for (const s of steps) {
      expect(s.undo, s.kind).to.not.equal(undefined);
      const d = s.do.argv.join(' ');
      const u = s.undo!.argv.join(' ');
      const rule = /^tc filter (add|replace|del) dev (\S+) ingress pref (\d+) handle (0x[0-9a-f]+) /.exec(d + ' ');
      if (rule) {
        const [, verb, dev, pref, handle] = rule;
        const id = `dev ${dev} ingress pref ${pref} handle ${handle}`;
        if (verb === 'add') expect(u).to.equal(`tc filter del ${id} flower`);
        if (verb === 'replace') expect(u).to.match(new RegExp(`^tc filter replace ${id} protocol all flower skip_sw `));
        if (verb === 'del') expect(u).to.match(new RegExp(`^tc filter add ${id} protocol all flower skip_sw `));
      } else if (d.startsWith('tc qdisc add')) {
        expect(u).to.equal(d.replace('qdisc add', 'qdisc del'));
      } else if (d.startsWith('ip link add vfwvxlan')) {
        expect(u).to.equal('ip link del vfwvxlan');
      } else {
        expect(d).to.equal('ip link set dev vfwvxlan up');
        expect(u).to.equal('ip link set dev vfwvxlan down');
      }
    }
  });

  it('rolling back a join restores the exact state before it, and a release by recomputation leaves what a fresh start would', () => {
    const m = new TcModel();
    m.run(renderTcHost(HOST_A, OVERLAY_MTU).map((s) => s.do));
    const hostOnly = m.snapshot();

    const j1 = planTcJoin(HOST_A, empty(100, [B, C]), [WEB1]);
    m.run(j1.map((s) => s.do));
    const afterWeb1 = m.snapshot();
    const j2 = planTcJoin(HOST_A, { vni: 100, peers: [B, C], members: [WEB1] }, [WEB2]);
    m.run(j2.map((s) => s.do));
    m.run([...j2].reverse().map((s) => s.undo!));
    expect(m.snapshot(), 'rollback of web2').to.deep.equal(afterWeb1);

    m.run(j2.map((s) => s.do));
    // web1 leaves: the rewrite computed from the ledger's members, then web1's recorded undo.
    const web1Undo = j1.filter((s) => s.owner.kind === 'lease' && s.undo).map((s) => s.undo!);
    m.run(planTcLeave(HOST_A, { vni: 100, peers: [B, C], members: [WEB1, WEB2] }, [WEB1.leaseKey]).map((s) => s.do));
    m.run([...web1Undo].reverse());
    const fresh = new TcModel();
    fresh.run(renderTcHost(HOST_A, OVERLAY_MTU).map((s) => s.do));
    fresh.run(planTcJoin(HOST_A, empty(100, [B, C]), [WEB2]).map((s) => s.do));
    expect(m.snapshot(), 'web2 alone after web1 left').to.deep.equal(fresh.snapshot());

    const web2Undo = j2.filter((s) => s.owner.kind === 'lease' && s.undo).map((s) => s.undo!);
    m.run(planTcLeave(HOST_A, { vni: 100, peers: [B, C], members: [WEB2] }, [WEB2.leaseKey]).map((s) => s.do));
    m.run([...web2Undo].reverse());
    expect(m.snapshot(), 'nothing left but host state').to.deep.equal(hostOnly);
  });

  it('only lease-owned steps are meant for the ledger; the rewrite carries an owner no ledger entry matches', () => {
    const steps = planTcJoin(HOST_A, { vni: 100, peers: [B], members: [WEB1] }, [WEB2]);
    for (const s of steps) {
      if (isTcSyncStep(s)) expect(s.owner).to.deep.equal({ kind: 'host' });
      else expect(s.owner).to.deep.equal({ kind: 'lease', key: WEB2.leaseKey });
    }
  });

  it("derives handles from the VF's PCI address, the VNI and the peer index", () => {
    expect(vfBits('0000:03:00.2')).to.equal(0x302);
    expect(vfBits('0000:af:1f.7')).to.equal(0xafff);
    expect(() => vfBits('03:00.2')).to.throw(/not a PCI address/);
    const rules = tcVniRules(HOST_A, { vni: 0xabcdef, peers: [B, C], members: [WEB1] });
    expect(rules.filter((r) => r.dev === 'vfwvxlan').map((r) => [r.pref, r.handle.toString(16)])).to.deep.equal([
      [1, '30200'],
      [2, 'abcdef00'],
      [1, '30201'],
      [2, 'abcdef01'],
    ]);
    for (const r of rules) expect(r.pref).to.be.within(1, 16, 'mlx5 offloads prio 1..16');
  });

  it('a VNI with no peers keeps its traffic local; a lone member gets only its drop rule', () => {
    const alone = planTcJoin(HOST_A, empty(7, []), [WEB1]);
    expect(alone.map((s) => s.device)).to.deep.equal(['enp3s0f0r0', 'enp3s0f0r0 pref 4 handle 0x1']);
    const pair = tcVniRules(HOST_A, { vni: 7, peers: [], members: [WEB1, WEB2] });
    const bum = pair.find((r) => r.dev === WEB1.rep && r.pref === 2)!;
    expect(bum.spec.join(' ')).to.match(/action mirred egress redirect dev enp3s0f0r1$/);
    expect(bum.spec.join(' ')).to.not.include('tunnel_key');
  });

  it('refuses what mlx5 cannot offload or the handles cannot tell apart', () => {
    const peers = Array.from({ length: MLX5_MAX_FWD_DESTS }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
    expect(() => tcVniRules(HOST_A, { vni: 5, peers, members: [WEB1] })).to.not.throw();
    expect(() => tcVniRules(HOST_A, { vni: 5, peers, members: [WEB1, WEB2] })).to.throw(
      /would replicate to 33 destinations; mlx5 offloads at most 32/,
    );
    const clone = { ...WEB2, pci: '0001:03:00.2' };
    expect(() => tcVniRules(HOST_A, { vni: 5, peers: [B], members: [WEB1, clone] })).to.throw(/handle collision/);
    expect(() => tcVniRules(HOST_A, { vni: 5, peers: [B], members: [{ ...WEB1, mac: '01:00:5e:00:00:01' }] })).to.throw(
      /not a unicast MAC/,
    );
    expect(() => planTcJoin(HOST_A, { vni: 5, peers: [B], members: [WEB1] }, [WEB1])).to.throw(/already a member/);
  });
});

describe('tc-flower host state (host setup)', () => {
  it('reads the device and its qdisc as ip and tc print them (captured here) and plans nothing more', () => {
    const vxlan = parseTcHostLink(fixture('ip-link-vfwvxlan.json'));
    expect(vxlan).to.deep.equal({ external: true, port: 4789, mtu: 9166, up: true });
    const ingressQdisc = hasIngressQdisc(fixture('qdisc-show-vfwvxlan.json'), 'vfwvxlan');
    expect(ingressQdisc).to.equal(true);
    expect(planTcHost(HOST_A, OVERLAY_MTU, { vxlan, ingressQdisc })).to.deep.equal([]);
  });

  it('changes only what differs, and restores what it read', () => {
    const steps = planTcHost(HOST_A, 9129, {
      vxlan: { external: true, port: 4789, mtu: 9166, up: false },
      ingressQdisc: true,
    });
    expect(steps.map((s) => [formatCommand(s.do), formatCommand(s.undo!)])).to.deep.equal([
      ['ip link set dev vfwvxlan mtu 9129', 'ip link set dev vfwvxlan mtu 9166'],
      ['ip link set dev vfwvxlan up', 'ip link set dev vfwvxlan down'],
    ]);
    expect(planTcHost(HOST_A, OVERLAY_MTU, { vxlan: null, ingressQdisc: true }).map((s) => s.kind)).to.deep.equal([
      'tcf-vxlan-create',
      'tcf-vxlan-up',
      'tcf-qdisc',
    ]);
  });

  it('will not take over a device of the same name that is not external on 4789', () => {
    expect(() =>
      planTcHost(HOST_A, OVERLAY_MTU, { vxlan: { external: false, port: 4789, mtu: 1500, up: true } }),
    ).to.throw(/vfwvxlan exists but is not an external VXLAN device on UDP 4789 .*ip link del vfwvxlan/);
    expect(() => parseTcHostLink('[{"ifname":"vfwvxlan","linkinfo":{"info_kind":"veth"}}]')).to.throw(
      /not a VXLAN device \(veth\)/,
    );
  });

  it('a start checks the shared device is there; the check has nothing to undo', () => {
    const check = renderTcHostCheck(HOST_A, WEB1.leaseKey);
    expect(check.do.argv).to.deep.equal(['ip', 'link', 'show', 'dev', 'vfwvxlan']);
    expect(check.undo).to.equal(undefined);
  });
});

describe('tc-flower doctor: in_hw from tc -j -s filter show', () => {
  const both: TcVniState = { vni: 100, peers: [B, C], members: [WEB1, WEB2] };

  it('parses flower filters and skips classifier head entries', () => {
    const rep = parseTcFilterShow(fixture('filter-show-rep0.json'), 'enp3s0f0r0');
    expect(rep.map((f) => [f.pref, f.handle, f.inHw, f.skipSw])).to.deep.equal([
      [1, 0x303, true, true],
      [2, 1, true, true],
      [3, 1, true, true],
      [4, 1, true, true],
    ]);
    expect(rep[0]!.inHwCount).to.equal(1);
  });

  it('passes over what is not a flower filter in real tc output (captured here: u32 with a mirred action)', () => {
    const raw = JSON.parse(fixture('u32-mirred-captured.json')) as Array<{
      kind: string;
      options?: { not_in_hw?: boolean };
    }>;
    expect(raw.filter((e) => e.options?.not_in_hw)).to.have.length(2);
    expect(parseTcFilterShow(fixture('u32-mirred-captured.json'), 'enp3s0f0r0')).to.deep.equal([]);
  });

  it('reports each expected rule as in_hw, not_in_hw or missing', () => {
    const shown = new Map([
      ['enp3s0f0r0', parseTcFilterShow(fixture('filter-show-rep0.json'))],
      ['enp3s0f0r1', parseTcFilterShow(fixture('filter-show-rep1.json'))],
      ['vfwvxlan', parseTcFilterShow(fixture('filter-show-vfwvxlan.json'))],
    ]);
    const checks = checkTcOffload(tcVniRules(HOST_A, both), shown);
    const bad = checks
      .filter((c) => c.state !== 'in_hw')
      .map((c) => `${c.state} ${c.dev} ${c.pref} 0x${c.handle.toString(16)}`);
    expect(bad).to.deep.equal(['missing enp3s0f0r1 4 0x1', 'not_in_hw vfwvxlan 2 0x6401']);
    expect(checks.find((c) => c.state === 'not_in_hw')!.detail).to.match(
      /^vfwvxlan pref 2 handle 0x6401: not_in_hw \(VNI 100 BUM from 192\.168\.80\.4/,
    );
    expect(checks).to.have.length(tcVniRules(HOST_A, both).length);
  });

  it("refuses output that is not tc's JSON", () => {
    expect(() => parseTcFilterShow('filter parent ffff: protocol all', 'r0')).to.throw(
      /tc filter show dev r0: output is not JSON/,
    );
    expect(() => parseTcFilterShow('{}', 'r0')).to.throw(/expected a JSON array/);
  });
});

// The rendered tc commands against this kernel, in a netns made for the test. This kernel has no
// cls_flower (nor act_tunnel_key), but tc parses a whole filter, actions included, in user space
// and resolves every device name before it sends anything: a syntax error or an unknown device
// ends there with exit status 1 ("What is ...", usage, "Cannot find device"). Only a command that
// parsed completely reaches the kernel, whose refusal tc reports with exit status 2 and "We have
// an error talking to the kernel" ("Error: TC classifier not found." here). So exit status 2 with
// the kernel's message proves the syntax and the names as far as this machine can; the host
// steps (external VXLAN device, ingress qdiscs) run for real.
describe('tc-flower commands on this kernel (syntax up to the missing cls_flower)', function () {
  this.timeout(60_000);
  const ns = `vfwt-tcf-${process.pid}`;
  const host: TcFlowerHost = { netns: ns, underlayAddress: '198.18.0.1' };
  const tcs = [...new Set([process.env.VFWIRE_TEST_TC, '/sbin/tc', '/opt/vfwire/iproute2/bin/tc'])].filter(
    (p): p is string => !!p && existsSync(p),
  );
  const run = (bin: string, argv: string[], input?: string) =>
    execa(bin, argv.slice(1), { reject: false, input, env: { LC_ALL: 'C' } });

  before(async function () {
    if (tcs.length === 0) this.skip();
    await execa('ip', ['netns', 'add', ns]);
    for (const i of [0, 1])
      await execa('ip', ['-n', ns, 'link', 'add', `enp3s0f0r${i}`, 'type', 'veth', 'peer', 'name', `enp3s0f0v${i}`]);
  });
  after(() => execa('ip', ['netns', 'del', ns], { reject: false }));

  it('the host steps run for real, and a second external device on 4789 is refused', async () => {
    for (const s of renderTcHost(host, OVERLAY_MTU)) {
      const r = await run(s.do.argv[0] === 'tc' ? tcs[0]! : 'ip', s.do.argv);
      expect(r.exitCode, `${formatCommand(s.do)}: ${r.stderr}`).to.equal(0);
    }
    const details = (await execa('ip', ['-n', ns, '-d', 'link', 'show', 'vfwvxlan'])).stdout;
    expect(details).to.match(/vxlan external .*dstport 4789/);
    const second = await execa(
      'ip',
      ['-n', ns, 'link', 'add', 'vfwvxlan2', 'type', 'vxlan', 'dstport', '4789', 'external'],
      { reject: false },
    );
    expect(second.stderr).to.include('A VXLAN device with the specified VNI already exists');
    // Read back as host setup would: a second run plans nothing.
    const vxlan = parseTcHostLink((await execa('ip', ['-n', ns, '-j', '-d', 'link', 'show', 'vfwvxlan'])).stdout);
    const ingressQdisc = hasIngressQdisc(
      (await execa(tcs[0]!, ['-n', ns, '-j', 'qdisc', 'show', 'dev', 'vfwvxlan'])).stdout,
    );
    expect(planTcHost(host, OVERLAY_MTU, { vxlan, ingressQdisc })).to.deep.equal([]);
  });

  it('the representor qdisc steps and their undo run for real', async () => {
    for (const s of planTcJoin(host, empty(100, []), [WEB1]).filter((x) => x.kind === 'tcf-rep-qdisc')) {
      expect((await run(tcs[0]!, s.do.argv)).exitCode).to.equal(0);
      expect((await execa(tcs[0]!, ['-n', ns, 'qdisc', 'show', 'dev', WEB1.rep])).stdout).to.match(
        /qdisc ingress ffff:/,
      );
      expect((await run(tcs[0]!, s.undo!.argv)).exitCode).to.equal(0);
      expect((await execa(tcs[0]!, ['-n', ns, 'qdisc', 'show', 'dev', WEB1.rep])).stdout).to.not.match(/ingress/);
    }
  });

  it('every filter command parses completely and is refused only by the kernel', async () => {
    const join1 = planTcJoin(host, empty(100, ['198.18.0.2', '198.18.0.3']), [WEB1]);
    const join2 = planTcJoin(host, { vni: 100, peers: ['198.18.0.2', '198.18.0.3'], members: [WEB1] }, [WEB2]);
    const leave = planTcLeave(host, { vni: 100, peers: ['198.18.0.2', '198.18.0.3'], members: [WEB1, WEB2] }, [
      WEB1.leaseKey,
    ]);
    const commands = [...join1, ...join2, ...leave]
      .flatMap((s) => [s.do, s.undo!])
      .filter((c) => c.argv[3] === 'filter');
    // The qdiscs are real, so each filter command gets as far as the classifier lookup.
    for (const dev of [WEB1.rep, WEB2.rep]) await execa(tcs[0]!, ['-n', ns, 'qdisc', 'replace', 'dev', dev, 'ingress']);
    let filters = 0;
    for (const bin of tcs) {
      for (const cmd of commands) {
        const r = await run(bin, cmd.argv);
        const what = `${bin} ${formatCommand(cmd)}`;
        expect(r.stderr, what).to.not.match(/Usage:|What is|Illegal|Cannot find device|bad /);
        expect(r.exitCode, `${what}: ${r.stderr}`).to.equal(2);
        expect(r.stderr, what).to.include('We have an error talking to the kernel');
        const kernelSays =
          cmd.argv[4] === 'del' ? 'Error: Cannot find specified filter chain.' : 'Error: TC classifier not found.';
        expect(r.stderr.split('\n')[0], what).to.equal(kernelSays);
        filters++;
      }
    }
    expect(filters).to.be.greaterThan(20);
  });

  it("the host steps' undo removes the device", async () => {
    for (const s of [...renderTcHost(host, OVERLAY_MTU)].reverse()) {
      const r = await run(s.undo!.argv[0] === 'tc' ? tcs[0]! : 'ip', s.undo!.argv);
      expect(r.exitCode, r.stderr).to.equal(0);
    }
    expect((await execa('ip', ['-n', ns, 'link', 'show', 'vfwvxlan'], { reject: false })).exitCode).to.not.equal(0);
  });
});

// A small interpreter of the commands the renderer emits, strict like the kernel: adding what
// exists or deleting what does not is an error. It checks plans as state transitions.
class TcModel {
  links = new Map<string, boolean>();
  qdiscs = new Set<string>();
  filters = new Map<string, string>();

  run(cmds: Command[]): void {
    for (const c of cmds) this.one(c.argv.join(' '));
  }

  snapshot(): object {
    return { links: [...this.links].sort(), qdiscs: [...this.qdiscs].sort(), filters: [...this.filters].sort() };
  }

  private one(cmd: string): void {
    let m: RegExpExecArray | null;
    if ((m = /^ip link add (\S+) /.exec(cmd))) {
      if (this.links.has(m[1]!)) throw new Error(`exists: ${cmd}`);
      this.links.set(m[1]!, false);
    } else if ((m = /^ip link del (\S+)$/.exec(cmd))) {
      if (!this.links.delete(m[1]!)) throw new Error(`absent: ${cmd}`);
    } else if ((m = /^ip link set dev (\S+) (up|down)$/.exec(cmd))) {
      this.links.set(m[1]!, m[2] === 'up');
    } else if ((m = /^tc qdisc (add|del) dev (\S+) ingress$/.exec(cmd))) {
      if (m[1] === 'add') {
        if (this.qdiscs.has(m[2]!)) throw new Error(`exists: ${cmd}`);
        this.qdiscs.add(m[2]!);
      } else {
        if (!this.qdiscs.delete(m[2]!)) throw new Error(`absent: ${cmd}`);
        for (const k of [...this.filters.keys()]) if (k.startsWith(`${m[2]} `)) this.filters.delete(k);
      }
    } else if (
      (m = /^tc filter (add|replace|del) dev (\S+) ingress pref (\d+) handle (\S+) (?:protocol all )?flower(.*)$/.exec(
        cmd,
      ))
    ) {
      const [, verb, dev, pref, handle, spec] = m;
      const key = `${dev} ${pref} ${handle}`;
      if (!this.qdiscs.has(dev!)) throw new Error(`no qdisc: ${cmd}`);
      if (verb === 'add' && this.filters.has(key)) throw new Error(`exists: ${cmd}`);
      if (verb === 'del' && !this.filters.delete(key)) throw new Error(`absent: ${cmd}`);
      if (verb !== 'del') this.filters.set(key, spec!.trim());
    } else {
      throw new Error(`model does not know: ${cmd}`);
    }
  }
}
