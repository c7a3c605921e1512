// Kernel lab suite (runs inside a lab VM: lab/run.sh KVER dist/test/lab/suites/kernel-features.lab.js).
// Proves the tier itself: the VM runs the kernel it was asked for, and that kernel loads what this
// machine's kernel lacks (ESP, xfrm, tc flower and its actions, bonding, Open vSwitch) from the
// shared /lib/modules. The sim host pair runs in the other suites: the bridge overlay under
// static IPsec, the tc-flower overlay in software with tenant isolation.

import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { runner } from '../../helpers/sim.js';
import { requireLabVm } from '../lab-runner.js';

const MODULES = [
  'esp4',
  'xfrm_user',
  'nf_tables',
  'nft_xfrm',
  'cls_flower',
  'act_tunnel_key',
  'act_mirred',
  'bonding',
  'vxlan',
  'veth',
  'openvswitch',
];

describe('lab: kernel features', function () {
  this.timeout(60_000);

  before(() => {
    requireLabVm();
  });

  it('runs on the kernel VFWIRE_LAB names, as root', () => {
    expect(release()).to.equal(process.env.VFWIRE_LAB);
    expect(process.getuid?.()).to.equal(0);
  });

  for (const m of MODULES) {
    it(`loads ${m} from /lib/modules/${release()}`, async () => {
      await runner.run({ argv: ['modprobe', m] });
      expect(existsSync(`/sys/module/${m}`), `/sys/module/${m}`).to.equal(true);
    });
  }
});
