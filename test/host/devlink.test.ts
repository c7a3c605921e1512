import { expect } from 'chai';
import { VfwireError } from '../../src/errors.js';
import { parseEswitchShow, parseFlowSteeringShow, readDevlinkState } from '../../src/host/devlink.js';
import type { Runner } from '../../src/exec/runner.js';

const PCI = '0000:03:00.0';

describe('devlink state', () => {
  it('reads the mode from devlink JSON', () => {
    expect(
      parseEswitchShow(`{"dev":{"pci/${PCI}":{"mode":"switchdev","inline-mode":"none","encap-mode":"basic"}}}`, PCI),
    ).to.equal('switchdev');
    expect(parseEswitchShow(`{"dev":{"pci/${PCI}":{"mode":"legacy"}}}`, PCI)).to.equal('legacy');
  });

  it('refuses output for another device, without a mode, or not JSON', () => {
    expect(() => parseEswitchShow(`{"dev":{"pci/0000:03:00.1":{"mode":"switchdev"}}}`, PCI)).to.throw(
      VfwireError,
      /no eswitch mode/,
    );
    expect(() => parseEswitchShow(`{"dev":{"pci/${PCI}":{}}}`, PCI)).to.throw(VfwireError, /no eswitch mode/);
    expect(() => parseEswitchShow('kernel answers: Operation not supported', PCI)).to.throw(VfwireError, /not JSON/);
  });

  it('reads the runtime flow steering mode, and nothing when the NIC has no such parameter', () => {
    const json = `{"param":{"pci/${PCI}":[{"name":"flow_steering_mode","type":"driver-specific","values":[{"cmode":"runtime","value":"dmfs"}]}]}}`;
    expect(parseFlowSteeringShow(json, PCI)).to.equal('dmfs');
    expect(parseFlowSteeringShow('{"param":{}}', PCI)).to.equal(undefined);
  });

  it('asks devlink for exactly that PCI device', async () => {
    const seen: string[][] = [];
    const runner: Runner = {
      run: async (cmd) => {
        seen.push(cmd.argv);
        if (cmd.argv.includes('param')) throw new Error('devlink answers: Operation not supported');
        return { stdout: `{"dev":{"pci/${PCI}":{"mode":"switchdev"}}}`, stderr: '' };
      },
    };
    expect(await readDevlinkState(runner, PCI)).to.deep.equal({
      eswitchMode: 'switchdev',
      flowSteeringMode: undefined,
    });
    expect(seen).to.deep.equal([
      ['devlink', '-j', 'dev', 'eswitch', 'show', `pci/${PCI}`],
      ['devlink', '-j', 'dev', 'param', 'show', `pci/${PCI}`, 'name', 'flow_steering_mode'],
    ]);
  });
});
