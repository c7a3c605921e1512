// `vfwire doctor` on a sim host: all green as built, then each precondition broken in turn.

import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { CheckResult } from '../../src/doctor/checks.js';
import { vfwire } from '../helpers/cli.js';
import { downTestSim, upTestSim, type TestSim } from '../helpers/sim.js';

describe('vfwire doctor', function () {
  this.timeout(60_000);
  let sim: TestSim | undefined;
  before(async () => {
    sim = await upTestSim(2);
  });
  after(() => downTestSim(sim));

  const doctor = async () => {
    const r = await vfwire(['--config', sim!.a.configPath, 'doctor', '--json']);
    return { code: r.code, results: JSON.parse(r.stdout) as CheckResult[] };
  };
  const status = (results: CheckResult[], check: string) => results.find((r) => r.check === check)?.status;
  const pciDir = () => join(sim!.a.dir, 'sys/bus/pci/devices/0000:03:00.0');

  it('passes every check on a freshly built sim host', async () => {
    const { code, results } = await doctor();
    expect(results.filter((r) => r.status !== 'pass'), JSON.stringify(results)).to.deep.equal([]);
    expect(results.map((r) => r.check)).to.include.members(['enp3s0f0np0: SR-IOV', 'enp3s0f0np0: eswitch', 'enp3s0f0np0: flow steering', 'enp3s0f0np0: representors']);
    expect(code).to.equal(0);
  });

  it('fails, with the fix, on legacy mode and on SR-IOV off', async () => {
    writeFileSync(join(pciDir(), 'sim-devlink.json'), JSON.stringify({ mode: 'legacy', flow_steering_mode: 'smfs' }));
    writeFileSync(join(pciDir(), 'sriov_numvfs'), '0\n');
    const { code, results } = await doctor();
    expect(code).to.equal(1);
    expect(status(results, 'enp3s0f0np0: eswitch')).to.equal('fail');
    expect(status(results, 'enp3s0f0np0: SR-IOV')).to.equal('fail');
    expect(status(results, 'enp3s0f0np0: flow steering')).to.equal('warn');
    expect(results.find((r) => r.check === 'enp3s0f0np0: eswitch')!.fix).to.equal('vfwire host setup');
    writeFileSync(join(pciDir(), 'sim-devlink.json'), JSON.stringify({ mode: 'switchdev', flow_steering_mode: 'dmfs' }));
    writeFileSync(join(pciDir(), 'sriov_numvfs'), '2\n');
  });

  it('with IPsec on: ESP offload, iproute2 and the SAs to each peer', async () => {
    const doc = parse(readFileSync(sim!.a.configPath, 'utf8'));
    doc.ipsec = { mode: 'static', key_dir: join(sim!.a.dir, 'keys') };
    writeFileSync(sim!.a.configPath, stringify(doc));
    const { code, results } = await doctor();
    expect(code).to.equal(1);
    expect(status(results, 'enp3s0f0np0: ESP offload')).to.equal('fail');
    expect(status(results, 'IPsec to sim-b')).to.equal('fail');
    expect(results.find((r) => r.check === 'IPsec to sim-b')!.fix).to.equal('vfwire ipsec up');
    expect(status(results, 'iproute2')).to.be.oneOf(['pass', 'fail']);
  });
});
