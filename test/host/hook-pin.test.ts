// doctor's look at where the installed hook looks for VM markers, against the config.

import { expect } from 'chai';
import { hookPinCheck } from '../../src/host/checks.js';

const cfg = { stateDir: '/var/lib/vfwire', path: '/etc/vfwire/config.yaml' };
const hook = (pin?: string) =>
  `#!/bin/sh\n# installed by vfwire install.sh\nexport VFWIRE_CONFIG=/etc/vfwire/config.yaml\n${pin ? `export VFWIRE_STATE_DIR=${pin}\n` : ''}`;
const H = '/etc/libvirt/hooks/qemu.d/vfwire';

describe('hook state directory check', () => {
  it("passes when the hook's pin is the config's state_dir", () => {
    expect(hookPinCheck(cfg, H, hook('/var/lib/vfwire/'))).to.include({ status: 'pass' });
  });

  it('fails when they differ, saying starts are refused and how to fix it', () => {
    const r = hookPinCheck(cfg, H, hook('/srv/old'));
    expect(r).to.include({ status: 'fail' });
    expect(r.detail).to.equal(
      `${H} looks for leases in /srv/old, /etc/vfwire/config.yaml keeps them in /var/lib/vfwire: starts are refused`,
    );
    expect(r.fix).to.match(/^re-run install\.sh \(/);
    expect(
      hookPinCheck(cfg, H, hook('/srv/old').replace('\nexport', '\nexport VFWIRE_INSTALLED_BY=package\nexport')).fix,
    ).to.match(/^dpkg-reconfigure vfwire \(/);
  });

  it('warns when the hook pins none: correct, but Node for every release', () => {
    const r = hookPinCheck(cfg, H, hook());
    expect(r).to.include({ status: 'warn' });
    expect(r.detail).to.match(/pins none: every VM's release and reconnect starts Node$/);
  });
});
