// A hook killed with SIGKILL between any two prepare steps, on the sim's libvirt host: the
// ledger's 'preparing' lease and the objects already made are what `vfwire gc` must free.

import { expect } from 'chai';
import { execa } from 'execa';
import { HOOK_SCRIPT } from '../../src/sim/hook-call.js';
import { libvirtReachable } from '../../src/sim/libvirtd.js';
import { waitFor } from '../../src/wait.js';
import { vfwire } from '../helpers/cli.js';
import { domainXml } from '../helpers/hook.js';
import {
  admissionChains,
  configVariant,
  downTestSim,
  guardedPorts,
  leasesOn,
  links,
  upTestSim,
  type TestSim,
} from '../helpers/sim.js';

describe('kill -9 of a hook mid-prepare, then vfwire gc', function () {
  // Each gc waits for the dead hook's lock to go stale: 2 s with this config (lock_stale_ms).
  this.timeout(300_000);
  let sim: TestSim | undefined;
  let config = '';
  const VNI = 6_000_000 + Math.floor(Math.random() * 900_000);

  before(async function () {
    if (!(await libvirtReachable())) {
      if (process.env.CI) throw new Error('libvirtd is not reachable: gc asks it which VMs run');
      this.skip();
    }
    sim = await upTestSim(1, { libvirt: true });
    config = configVariant(sim.a.configPath, 'stale-2s.yaml', { lock_stale_ms: 2000 });
  });
  after(() => downTestSim(sim));

  const rootLinks = () => links();

  // The first lease of a VNI on the libvirt host: admission (nftables, in host A's netns),
  // rep-guard (nftables, root netns), vxlan-create (in A's netns), vxlan-move, bridge-create,
  // vxlan-master, vxlan-peer, bridge-up, rep-join.
  for (let k = 0; k < 9; k++) {
    it(`killed before step ${k}: gc leaves nothing behind`, async () => {
      const xml = domainXml('crashy', `00000000-0000-4000-8000-00000000c${k.toString().padStart(3, '0')}`, [
        `vni="${VNI}" encrypt="off"`,
      ]);
      const hook = execa(HOOK_SCRIPT, ['crashy', 'prepare', 'begin', '-'], {
        input: xml,
        env: { VFWIRE_CONFIG: config, VFWIRE_TEST_HANG_STEP: String(k) },
        reject: false,
      });
      await waitFor('the hook to record its lease', async () => ((await leasesOn(sim!.a)).length ? true : undefined));
      // Steps before k run once the lease is recorded; the hook then hangs at step k. Wait for
      // what they make rather than a fixed time (each is a process, slower on a loaded machine).
      const made = async () =>
        [...(await rootLinks()).keys(), ...(await links(sim!.a.netns)).keys()].filter(
          (n) => n === `vfwvx${VNI}` || n === `vfwbr${VNI}`,
        );
      const expected = k <= 2 ? 0 : k < 5 ? 1 : 2;
      await waitFor(
        `steps before ${k} to make ${expected} object(s)`,
        async () => ((await made()).length >= expected ? true : undefined),
        15_000,
      ).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      // The shim's `| exec node` runs node in a pipeline child: kill that process, as a crash would.
      await execa('pkill', ['-KILL', '-f', `hook-main.js -- crashy prepare`]);
      await hook;
      // The kill really came mid-way: what steps 0..k-1 made is there for gc to find.
      expect(await made(), 'objects made before the kill').to.have.length(expected);

      const gc = await vfwire(['--config', config, 'gc', '--grace', '0']);
      expect(gc.code, gc.stderr).to.equal(0);
      expect(await leasesOn(sim!.a)).to.deep.equal([]);
      const root = await rootLinks();
      expect([...root.keys()].filter((n) => n === `vfwbr${VNI}` || n === `vfwvx${VNI}`)).to.deep.equal([]);
      expect(root.get(`${sim!.a.tapPrefix}0`)?.master).to.equal(undefined);
      expect([...(await links(sim!.a.netns)).keys()].filter((n) => n.startsWith('vfw'))).to.deep.equal([]);
      expect(await admissionChains(sim!.a.netns), 'admission chains').to.deep.equal([]);
      expect(await guardedPorts(), 'guarded representors').not.to.include(`${sim!.a.tapPrefix}0`);
    });
  }
});
