// The hostile-input corpus (test/fixtures/hostile): every domain XML through the real hook, and
// every config through the CLI. Each must give one clear line and leave no trace.

import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { vfwire } from '../helpers/cli.js';
import { FIXTURES } from '../helpers/golden.js';
import { domainXml, runHook } from '../helpers/hook.js';
import { downTestSim, leasesOn, links, upTestSim, type TestSim } from '../helpers/sim.js';

const CORPUS = join(FIXTURES, 'hostile');

// What each refusal must name: the field, or the reason.
const DOMAIN_REASONS: Record<string, RegExp> = {
  'broadcast-mac.xml': /interface 0: mac: /,
  'duplicate-mac.xml': /interface 1: mac: /,
  'entity-bomb.xml': /DOCTYPE|ENTITY/,
  'external-entity.xml': /DOCTYPE|ENTITY/,
  'malformed-metadata.xml': /line \d+/,
  'mtu-too-big.xml': /interface 0: mtu: /,
  'multicast-mac.xml': /interface 0: mac: /,
  'name-unicode.xml': /^vfwire: vm "wéb-1 ✓ δοκιμή": interface 0: vni: /,
  'name-with-quotes-and-spaces.xml': /^vfwire: vm "my \\"odd\\" vm": interface 0: vni: /,
  'no-interfaces.xml': /interfaces: at least one/,
  'pf-like-an-option.xml': /interface 0: pf: /,
  'unknown-attribute.xml': /interface 0: vin: unknown attribute/,
  'vni-hex.xml': /interface 0: vni: /,
  'vni-too-big.xml': /interface 0: vni: /,
  'vni-zero.xml': /interface 0: vni: /,
  'zero-mac.xml': /interface 0: mac: /,
};

const CONFIG_REASONS: Record<string, RegExp> = {
  'alias-bomb.yaml': /not valid YAML|alias/i,
  'bad-address.yaml': /underlay\.address: must be an IPv4 address/,
  'interface-like-an-option.yaml': /underlay\.interface: /,
  'no-pfs.yaml': /pfs: must list at least one PF/,
  'not-yaml.yaml': /not valid YAML/,
  'peer-is-self.yaml': /own underlay address/,
  'peer-without-address.yaml': /peers\.0\.address/,
  'unknown-key.yaml': /Unrecognized key: "state-dir"/,
  'wrong-type.yaml': /vf_mtu: /,
};

describe('hostile input corpus', function () {
  this.timeout(120_000);
  let sim: TestSim | undefined;
  before(async () => {
    sim = await upTestSim(1);
  });
  after(() => downTestSim(sim));

  async function expectNoTrace(): Promise<void> {
    expect(await leasesOn(sim!.a)).to.deep.equal([]);
    expect([...(await links(sim!.a.netns)).keys()].filter((n) => n.startsWith('vfw'))).to.deep.equal([]);
  }

  it('covers every file of the corpus', () => {
    expect(readdirSync(join(CORPUS, 'domains')).sort()).to.deep.equal(Object.keys(DOMAIN_REASONS).sort());
    expect(readdirSync(join(CORPUS, 'configs')).sort()).to.deep.equal(Object.keys(CONFIG_REASONS).sort());
  });

  for (const [file, reason] of Object.entries(DOMAIN_REASONS)) {
    it(`domains/${file}: refused in one line, nothing done`, async () => {
      const r = await runHook(
        sim!.a.configPath,
        'vm1',
        'prepare',
        'begin',
        readFileSync(join(CORPUS, 'domains', file), 'utf8'),
      );
      expect(r.code).to.equal(1);
      expect(r.stderr.split('\n'), r.stderr).to.have.length(1);
      expect(r.stderr)
        .to.match(/^vfwire: /)
        .and.match(reason);
      await expectNoTrace();
    });
  }

  it('several megabytes of metadata: refused quickly, without echoing them', async () => {
    const huge = domainXml('vm1', '00000000-0000-4000-8000-000000000099', [
      `vni="100" pf="${'x'.repeat(3 * 1024 * 1024)}"`,
    ]);
    const t0 = Date.now();
    const r = await runHook(sim!.a.configPath, 'vm1', 'prepare', 'begin', huge);
    expect(r.code).to.equal(1);
    expect(r.stderr.length).to.be.below(300);
    expect(Date.now() - t0).to.be.below(10_000);
    await expectNoTrace();
  });

  it('17 interfaces: refused, naming the limit', async () => {
    const r = await runHook(
      sim!.a.configPath,
      'vm1',
      'prepare',
      'begin',
      domainXml(
        'vm1',
        '00000000-0000-4000-8000-000000000098',
        Array.from({ length: 17 }, () => 'vni="100"'),
      ),
    );
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/interfaces: at most 16/);
  });

  for (const [file, reason] of Object.entries(CONFIG_REASONS)) {
    it(`configs/${file}: refused in one line`, async () => {
      const r = await vfwire(['--config', join(CORPUS, 'configs', file), 'status']);
      expect(r.code).to.equal(1);
      expect(r.stderr.trim().split('\n'), r.stderr).to.have.length(1);
      expect(r.stderr)
        .to.match(/^vfwire: config /)
        .and.match(reason);
    });
  }
});
