// `vfwire host setup` on a sim host left as after a boot: the lab notes' steps, then nothing.

import { expect } from 'chai';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { vfwire } from '../helpers/cli.js';
import { domainXml, runHook } from '../helpers/hook.js';
import { downTestSim, editConfig, links, runner, upTestSim, type TestSim } from '../helpers/sim.js';

describe('vfwire host setup', function () {
  this.timeout(60_000);
  let sim: TestSim | undefined;
  before(async () => {
    sim = await upTestSim(2, {}, false);
  });
  after(() => downTestSim(sim));
  const setup = (...args: string[]) => vfwire(['--config', sim!.a.configPath, 'host', 'setup', ...args]);

  it("--dry-run prints the lab notes' per-boot steps for the sim PF, in order, and changes nothing", async () => {
    const r = await setup('--dry-run');
    expect(r.code, r.stderr).to.equal(0);
    const ns = sim!.a.netns;
    expect(r.stdout.trim().split('\n')).to.deep.equal([
      'devlink dev param set pci/0000:03:00.0 name flow_steering_mode value dmfs cmode runtime',
      'devlink dev eswitch set pci/0000:03:00.0 mode switchdev',
      `tee ${sim!.a.dir}/sys/class/net/enp3s0f0np0/device/sriov_drivers_autoprobe <<< 0`,
      `tee ${sim!.a.dir}/sys/class/net/enp3s0f0np0/device/sriov_numvfs <<< 2`,
      `ip -n ${ns} addr add 198.18.0.1/24 dev enp3s0f0np0`,
      `ip -n ${ns} link set dev enp3s0f0np0 mtu 9216 up`,
      // The representors come with the VFs: named by udev, found by phys_port_name, never guessed.
      "# then, once udev has named the new VFs' representors (udevadm settle), each found by its phys_port_name: ip link set dev <representor> mtu 9000 up",
    ]);
    expect((await links(ns)).get('enp3s0f0np0')?.mtu).to.equal(1500);
  });

  it('a real run makes the host ready, representors found by phys_port_name; a second run changes nothing', async () => {
    expect((await setup()).stdout).to.include('8 change(s) made');
    for (const rep of ['enp3s0f0r0', 'enp3s0f0r1'])
      expect((await links(sim!.a.netns)).get(rep)?.mtu, rep).to.equal(9000);
    expect((await setup()).stdout.trim()).to.equal('host is set up: nothing to change');
    expect((await vfwire(['--config', sim!.a.configPath, 'doctor'])).code).to.equal(0);
    expect((await links(sim!.a.netns)).get('enp3s0f0np0')?.mtu).to.equal(9216);
  });

  it('a representor udev named otherwise is found by its phys_port_name, not by a guessed name', async () => {
    const ns = sim!.a.netns;
    const net = join(sim!.a.dir, 'sys/class/net');
    const rename = async (from: string, to: string) => {
      await runner.run({ argv: ['ip', '-n', ns, 'link', 'set', 'dev', from, 'down'] });
      await runner.run({ argv: ['ip', '-n', ns, 'link', 'set', 'dev', from, 'name', to, 'mtu', '1500'] });
      renameSync(join(net, from), join(net, to));
    };
    await rename('enp3s0f0r1', 'vfwtrep1');
    try {
      expect((await setup('--dry-run')).stdout.trim()).to.equal(`ip -n ${ns} link set dev vfwtrep1 mtu 9000 up`);
      expect((await setup()).stdout).to.include('1 change(s) made');
      expect((await links(ns)).get('vfwtrep1')?.mtu).to.equal(9000);
    } finally {
      await rename('vfwtrep1', 'enp3s0f0r1');
    }
    expect((await setup()).stdout).to.include('1 change(s) made');
  });

  it('with overlay: tc-flower, makes the external VXLAN device and its qdisc, once', async () => {
    editConfig(sim!.a.configPath, (doc) => {
      doc.overlay = 'tc-flower';
    });
    const ns = sim!.a.netns;
    expect((await setup('--dry-run')).stdout.trim().split('\n')).to.deep.equal([
      `ip -n ${ns} link add vfwvxlan mtu 9166 type vxlan dstport 4789 external`,
      `ip -n ${ns} link set dev vfwvxlan up`,
      `tc -n ${ns} qdisc add dev vfwvxlan ingress`,
    ]);
    expect((await setup()).code).to.equal(0);
    expect((await setup()).stdout.trim()).to.equal('host is set up: nothing to change');
    // This kernel has no cls_flower: a start fails at the first rule, and rolls back.
    const xml = domainXml('flow', '00000000-0000-4000-8000-0000000000f1', ['vni="100" encrypt="off"']);
    const r = await runHook(sim!.a.configPath, 'flow', 'prepare', 'begin', xml);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^vfwire: vm flow: failed to tcf-rule .*(classifier|not found|Unknown)/i);
    const host = await links(ns);
    expect(host.get('enp3s0f0r0')?.master).to.equal(undefined);
    editConfig(sim!.a.configPath, (doc) => {
      delete doc.overlay;
    });
    await runner.run({ argv: ['ip', '-n', ns, 'link', 'del', 'vfwvxlan'] });
  });

  it('is refused while a VF is leased', async () => {
    const xml = domainXml('busy', '00000000-0000-4000-8000-0000000000b1', ['vni="100" encrypt="off"']);
    expect((await runHook(sim!.a.configPath, 'busy', 'prepare', 'begin', xml)).code).to.equal(0);
    const r = await setup();
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/host setup: 1 VF\(s\) are leased; .*stop those VMs first/);
    expect((await runHook(sim!.a.configPath, 'busy', 'release', 'end', xml)).code).to.equal(0);
  });
});
