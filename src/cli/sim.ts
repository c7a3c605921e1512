// `vfwire sim ...`: the simulated host pair used by the demo and the tests.

import { Command, Option } from 'commander';
import { ExecRunner } from '../exec/runner.js';
import { ExitError } from '../errors.js';
import { runDemo } from '../sim/demo.js';
import { runLibvirtDemo } from '../sim/libvirt-demo.js';
import { startGuest, stopGuest } from '../sim/guest.js';
import { readSimOptions, simDown, simUp } from '../sim/sim-host.js';
import { DEFAULT_SIM, simHosts, type SimOptions } from '../sim/topology.js';
import { statusCommand } from './status.js';

const runner = new ExecRunner(30_000);

export function simCommands(program: Command): void {
  const sim = program.command('sim').description('simulated switchdev host pair in network namespaces (needs root)');
  const dirOpt = () => new Option('--dir <path>', 'sim state directory').default(DEFAULT_SIM.dir);

  sim
    .command('up')
    .description('create two sim hosts joined by an underlay link, each with one PF of N VFs')
    .addOption(dirOpt())
    .option('--prefix <name>', 'netns name prefix', DEFAULT_SIM.prefix)
    .option('--vfs <n>', 'VFs per PF', String(DEFAULT_SIM.vfs))
    .option('--libvirt', 'host A serves libvirt/QEMU VMs: its representors are taps in the root netns')
    .addOption(
      new Option('--overlay <kind>', "the hosts' overlay; ovs needs the openvswitch kernel module")
        .choices(['bridge', 'ovs'])
        .default('bridge'),
    )
    .option(
      '--no-setup',
      'leave the hosts as after a boot (SR-IOV off, legacy eswitch, PF down): try vfwire host setup',
    )
    .action(
      async (o: {
        dir: string;
        prefix: string;
        vfs: string;
        libvirt?: boolean;
        overlay: 'bridge' | 'ovs';
        setup: boolean;
      }) => {
        const hosts = await simUp(
          { dir: o.dir, prefix: o.prefix, vfs: Number(o.vfs), libvirt: o.libvirt, overlay: o.overlay },
          runner,
          o.setup,
        );
        for (const h of hosts)
          console.log(`host ${h.id}: netns ${h.netns}, underlay ${h.pf} ${h.underlayIp}, config ${h.configPath}`);
      },
    );

  sim
    .command('down')
    .description('remove the sim hosts, their guests and state')
    .addOption(dirOpt())
    .option('--prefix <name>', 'netns name prefix (when the state directory is gone)')
    .action(async (o: { dir: string; prefix?: string }) => {
      const opts = await readSimOptions(o.dir).catch(() => ({
        ...DEFAULT_SIM,
        dir: o.dir,
        prefix: o.prefix ?? DEFAULT_SIM.prefix,
      }));
      await simDown(opts, runner);
    });

  const guest = sim.command('guest').description('netns "VMs" started and stopped through the real hook');
  guest
    .command('start')
    .argument('<name>')
    .requiredOption('--host <a|b>', 'sim host')
    .requiredOption('--vni <n>', 'VNI')
    .requiredOption('--ip <cidr>', 'guest address in 198.18.0.0/15, e.g. 198.19.100.1/24')
    .addOption(new Option('--encrypt <mode>').choices(['required', 'off']))
    .option('--mtu <n>')
    .addOption(dirOpt())
    .action(
      async (
        name: string,
        o: { host: 'a' | 'b'; vni: string; ip: string; encrypt?: 'required' | 'off'; mtu?: string; dir: string },
      ) => {
        const opts = await readSimOptions(o.dir);
        const rec = await startGuest(
          opts,
          {
            name,
            host: o.host,
            vni: Number(o.vni),
            ip: o.ip,
            encrypt: o.encrypt,
            mtu: o.mtu ? Number(o.mtu) : undefined,
          },
          runner,
        );
        console.log(`${name}: netns ${rec.netns}, VF netdev ${rec.vfDev}, ${rec.ip} on VNI ${rec.vni}`);
      },
    );
  guest
    .command('stop')
    .argument('<name>')
    .addOption(dirOpt())
    .action(async (name: string, o: { dir: string }) => stopGuest(await readSimOptions(o.dir), name, runner));

  sim
    .command('status')
    .description('vfwire status of both sim hosts')
    .addOption(dirOpt())
    .action(async (o: { dir: string }) => {
      for (const h of simHosts(await readSimOptions(o.dir))) {
        console.log(`host ${h.id} (${h.netns}):`);
        await statusCommand({ config: h.configPath });
      }
    });

  sim
    .command('demo')
    .description('netns guests on VNIs 100 and 200 with the isolation proof, then QEMU VMs through libvirtd; cleans up')
    .option('--dir <path>', 'sim state directory', '/run/vfwire-demo')
    .option('--prefix <name>', 'netns name prefix', 'vfwdemo')
    .option('--keep', 'leave the netns sim and its guests running (skips the libvirt part)')
    .option('--no-libvirt', 'skip the part with libvirtd and QEMU VMs')
    .option('--guests', 'also boot Linux guests that ping over the overlay (builds a small guest image first)')
    .action(async (o: { dir: string; prefix: string; keep?: boolean; libvirt: boolean; guests?: boolean }) => {
      const opts: SimOptions = { dir: o.dir, prefix: o.prefix, vfs: DEFAULT_SIM.vfs };
      const io = (sim: SimOptions) => ({
        say: (line: string) => console.log(line),
        status: (id: 'a' | 'b') => statusCommand({ config: simHosts(sim).find((h) => h.id === id)!.configPath }),
      });
      let ok = await runDemo(opts, runner, io(opts), o.keep);
      if (o.libvirt && !o.keep) {
        const lv: SimOptions = { dir: `${o.dir}-libvirt`, prefix: `${o.prefix}l`, vfs: 4, libvirt: true };
        ok = (await runLibvirtDemo(lv, runner, io(lv), o.guests)) && ok;
      }
      if (!ok) throw new ExitError(1);
    });
}
