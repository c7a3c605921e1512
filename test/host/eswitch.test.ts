import { expect } from 'chai';
import { VfwireError } from '../../src/errors.js';
import { parseEswitchShow, readEswitchMode } from '../../src/host/eswitch.js';
import type { Runner } from '../../src/exec/runner.js';

const PCI = '0000:03:00.0';

describe('eswitch mode', () => {
  it('reads the mode from devlink JSON', () => {
    expect(parseEswitchShow(`{"dev":{"pci/${PCI}":{"mode":"switchdev","inline-mode":"none","encap-mode":"basic"}}}`, PCI)).to.equal('switchdev');
    expect(parseEswitchShow(`{"dev":{"pci/${PCI}":{"mode":"legacy"}}}`, PCI)).to.equal('legacy');
  });

  it('refuses output for another device, without a mode, or not JSON', () => {
    expect(() => parseEswitchShow(`{"dev":{"pci/0000:03:00.1":{"mode":"switchdev"}}}`, PCI)).to.throw(VfwireError, /no eswitch mode/);
    expect(() => parseEswitchShow(`{"dev":{"pci/${PCI}":{}}}`, PCI)).to.throw(VfwireError, /no eswitch mode/);
    expect(() => parseEswitchShow('kernel answers: Operation not supported', PCI)).to.throw(VfwireError, /not JSON/);
  });

  it('asks devlink for exactly that PCI device', async () => {
    const seen: string[][] = [];
    const runner: Runner = { run: async (cmd) => (seen.push(cmd.argv), { stdout: `{"dev":{"pci/${PCI}":{"mode":"switchdev"}}}`, stderr: '' }) };
    expect(await readEswitchMode(runner, PCI)).to.equal('switchdev');
    expect(seen).to.deep.equal([['devlink', '-j', 'dev', 'eswitch', 'show', `pci/${PCI}`]]);
  });
});
