// `vfwire plan` prints what a start would run, and runs none of it.

import { expect } from 'chai';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { admissionScript } from '../../src/overlay/admission.js';
import { repGuardScript } from '../../src/overlay/rep-guard.js';
import { vfwire } from '../helpers/cli.js';
import { domainXml } from '../helpers/hook.js';
import { admissionChains, downTestSim, links, upTestSim, type TestSim } from '../helpers/sim.js';

describe('vfwire plan', function () {
  this.timeout(60_000);
  let sim: TestSim | undefined;
  before(async () => {
    sim = await upTestSim(2);
  });
  after(() => downTestSim(sim));

  it('prints the lease and the exact commands without running them', async () => {
    const xml = join(sim!.opts.dir, 'web1.xml');
    writeFileSync(
      xml,
      domainXml('web1', '00000000-0000-4000-8000-000000000001', ['vni="100" encrypt="off" mac="52:54:00:00:00:01"']),
    );
    const r = await vfwire(['--config', sim!.a.configPath, 'plan', 'web1', '--xml', xml]);
    expect(r.code, r.stderr).to.equal(0);
    const ns = sim!.a.netns;
    expect(r.stdout.split('\n')).to.deep.equal([
      '# interface 0: enp3s0f0np0 vf 0 (0000:03:00.2), representor enp3s0f0r0, VNI 100, MAC 52:54:00:00:00:01, MTU 9000',
      // The script itself is pinned by the golden plans (test/fixtures/plans).
      `ip netns exec ${ns} nft -f - <<< '${admissionScript(100, [{ address: '198.18.0.2' }]).trim()}'`,
      `ip netns exec ${ns} nft -f - <<< '${repGuardScript('enp3s0f0r0', '52:54:00:00:00:01').trim()}'`,
      `ip -n ${ns} link add vfwvx100 mtu 9166 type vxlan id 100 dstport 4789 local 198.18.0.1 dev enp3s0f0np0 nolearning`,
      `ip -n ${ns} link add vfwbr100 mtu 9166 type bridge`,
      `ip -n ${ns} link set dev vfwvx100 master vfwbr100 up`,
      `bridge -n ${ns} fdb append 00:00:00:00:00:00 dev vfwvx100 dst 198.18.0.2`,
      `ip -n ${ns} link set dev vfwbr100 up`,
      `ip -n ${ns} link set dev enp3s0f0v0 address 52:54:00:00:00:01 mtu 9000`,
      `ip -n ${ns} link set dev enp3s0f0r0 mtu 9000 master vfwbr100 up`,
    ]);
    expect([...(await links(ns)).keys()].filter((n) => n.startsWith('vfw'))).to.deep.equal([]);
    expect(await admissionChains(ns), 'nothing written to nftables').to.deep.equal([]);
    expect(existsSync(join(sim!.a.dir, 'state/ledger.json'))).to.equal(false);
  });

  it('tells how to tag a domain that has no vfwire metadata', async () => {
    const xml = join(sim!.opts.dir, 'plain.xml');
    writeFileSync(xml, domainXml('plain', '00000000-0000-4000-8000-000000000002'));
    const r = await vfwire(['--config', sim!.a.configPath, 'plan', 'plain', '--xml', xml]);
    expect(r.code).to.equal(1);
    expect(r.stderr.trim()).to.equal(
      'vfwire: domain plain has no vfwire metadata: nothing to do (tag it with: vfwire vm set plain --vni N)',
    );
  });

  it('names a missing config and how to get one', async () => {
    const r = await vfwire(['--config', join(sim!.opts.dir, 'nope.yaml'), 'status']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(
      /cannot read config .*nope\.yaml \(copy templates\/config\.example\.yaml there, or pass --config\)/,
    );
  });
});
