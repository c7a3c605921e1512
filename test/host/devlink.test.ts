import { expect } from 'chai';
import { VfwireError } from '../../src/errors.js';
import { parseEswitchShow, parseFlowSteeringShow, readDevlinkState } from '../../src/host/devlink.js';
import { CommandError, type Runner } from '../../src/exec/runner.js';

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

  // A Runner that answers eswitch show and fails param show with `paramError`, recording the calls.
  const devlink = (paramError: Error, seen: string[][] = []): Runner => ({
    run: async (cmd) => {
      seen.push(cmd.argv);
      if (cmd.argv.includes('param')) throw paramError;
      return { stdout: `{"dev":{"pci/${PCI}":{"mode":"switchdev"}}}`, stderr: '' };
    },
  });
  const paramShow = `devlink -j dev param show pci/${PCI} name flow_steering_mode`;

  it('asks devlink for exactly that PCI device; a parameter the driver lacks (EINVAL) is absent', async () => {
    const seen: string[][] = [];
    const lacks = new CommandError(`${paramShow}: exit code 1: kernel answers: Invalid argument`);
    expect(await readDevlinkState(devlink(lacks, seen), PCI)).to.deep.equal({
      eswitchMode: 'switchdev',
      flowSteeringMode: undefined,
    });
    expect(seen).to.deep.equal([
      ['devlink', '-j', 'dev', 'eswitch', 'show', `pci/${PCI}`],
      ['devlink', '-j', 'dev', 'param', 'show', `pci/${PCI}`, 'name', 'flow_steering_mode'],
    ]);
  });

  it('any other failure of the parameter read is thrown, never read as "no such parameter"', async () => {
    for (const failure of [`timed out after 10000 ms`, 'exit code 1: kernel answers: Operation not permitted']) {
      const err = new CommandError(`${paramShow}: ${failure}`);
      const got = await readDevlinkState(devlink(err), PCI).catch((e: unknown) => e);
      expect(got, failure).to.equal(err);
    }
  });
});
