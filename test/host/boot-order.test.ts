// doctor's look at the PF devices host setup waits for at boot, against the config's pfs.

import { expect } from 'chai';
import { execa } from 'execa';
import { bootOrderCheck, orderedPfs } from '../../src/host/boot-order.js';

const cfg = (...names: string[]) => ({ path: '/etc/vfwire/config.yaml', pfs: names.map((name) => ({ name })) });
/** The lines install.sh and postinst write, from systemd-escape itself. */
async function rendered(...names: string[]): Promise<string> {
  const lines: string[] = [];
  for (const n of names) {
    const { stdout } = await execa('systemd-escape', ['--path', '--suffix=device', `/sys/subsystem/net/devices/${n}`]);
    lines.push(`Requires=${stdout}`, `After=${stdout}`);
  }
  return `[Unit]\nAfter=local-fs.target systemd-modules-load.service\n${lines.join('\n')}\n`;
}

describe('boot order check', () => {
  it("reads back the PF names systemd-escape wrote, '-' and all", async () => {
    expect(orderedPfs(await rendered('ens1f0-pf0', 'enp3s0f0np0'))).to.deep.equal(['ens1f0-pf0', 'enp3s0f0np0']);
  });

  it('passes when the rendered PFs are the config’s, in any order', async () => {
    const r = bootOrderCheck(cfg('b0', 'a0'), { unit: await rendered('a0', 'b0') });
    expect(r).to.include({ status: 'pass' });
  });

  it('warns when they differ, naming the fix of whoever rendered them', async () => {
    const fromPackage = bootOrderCheck(cfg('enp4s0f0np0'), { dropin: await rendered('enp3s0f0np0') });
    expect(fromPackage).to.include({ status: 'warn' });
    expect(fromPackage!.detail).to.equal(
      'host setup waits at boot for enp3s0f0np0; /etc/vfwire/config.yaml names enp4s0f0np0',
    );
    expect(fromPackage!.fix).to.match(/^dpkg-reconfigure vfwire/);
    const fromInstallSh = bootOrderCheck(cfg('enp4s0f0np0'), { unit: '[Unit]\nAfter=local-fs.target\n' });
    expect(fromInstallSh!.detail).to.match(/^host setup waits at boot for no PF device;/);
    expect(fromInstallSh!.fix).to.match(/^\.\/install\.sh again/);
  });

  it('says nothing where no boot unit is installed', () => {
    expect(bootOrderCheck(cfg('a0'), {})).to.equal(undefined);
  });
});
