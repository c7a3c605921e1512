// End to end on a real libvirt daemon with QEMU: `virsh start` of a tagged VM leases a VF of the
// sim's libvirt host (host A) and the attach worker plugs it in live; every way a VM ends gives
// it all back. libvirt runs this checkout's hook through a qemu.d file written for the test.

import { expect } from 'chai';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { withLedger } from '../../src/ledger/store.js';
import { CLI, vfwire } from '../helpers/cli.js';
import {
  defineDiskless,
  installSimHook,
  libvirtReachable,
  removeDomain,
  removeSimHook,
  restartLibvirtd,
  virsh,
  virtType,
  type DisklessDomain,
} from '../../src/sim/libvirtd.js';
import { waitFor } from '../../src/wait.js';
import { vmSlotsCheck } from '../../src/ops/hotplug-ports.js';
import { runHook } from '../helpers/hook.js';
import {
  downTestSim,
  editConfig,
  expectHostAClean,
  leaseOf as leaseOfOn,
  leasesOn,
  links,
  runner,
  upTestSim,
  type TestSim,
} from '../helpers/sim.js';

describe('e2e: libvirtd + QEMU', function () {
  this.timeout(180_000);
  let sim: TestSim | undefined;
  let hook: string | undefined;
  let type: 'kvm' | 'qemu' = 'qemu';
  const xmlDir = mkdtempSync(join(tmpdir(), 'vfwt-e2e-'));
  const defined: string[] = [];
  // Root-netns bridge names follow the VNI: pick one unlikely to be in use on this machine.
  const VNI = 7_000_000 + Math.floor(Math.random() * 900_000);
  const OFF = `vni="${VNI}" encrypt="off"`;

  before(async function () {
    if (!(await libvirtReachable())) {
      if (process.env.CI) throw new Error('libvirtd is not reachable at qemu:///system');
      this.skip();
    }
    type = await virtType();
    sim = await upTestSim(2, { libvirt: true });
    hook = await installSimHook(`${sim.opts.prefix}-vfwire`, sim.a.configPath);
  });

  after(async () => {
    for (const name of defined) await removeDomain(name);
    if (hook) await removeSimHook(hook);
    await downTestSim(sim);
  });

  const name = (n: string) => `${sim!.opts.prefix}-${n}`;
  async function define(n: string, d: Partial<DisklessDomain> = {}): Promise<string> {
    const full = name(n);
    await defineDiskless(xmlDir, { name: full, type, ...d });
    defined.push(full);
    return full;
  }
  const leases = () => leasesOn(sim!.a);
  const leaseOf = (vm: string) => leaseOfOn(sim!.a, vm);
  const rootLinks = () => links();
  const expectNothingLeft = () => expectHostAClean(sim!, [VNI]);

  it('virsh start leases a VF and attaches it live; virsh destroy gives everything back', async () => {
    const vm = await define('vm1', { ifaces: [OFF] });
    const start = await virsh('start', vm);
    expect(start.exitCode, start.stderr).to.equal(0);
    const lease = await waitFor('the live attach', async () => {
      const l = await leaseOf(vm);
      return l?.attachedAt ? l : undefined;
    });
    expect((await rootLinks()).get(lease.rep)?.master).to.equal(`vfwbr${VNI}`);
    const iflist = (await virsh('domiflist', vm)).stdout;
    expect(iflist).to.match(new RegExp(`${lease.rep}\\s+ethernet\\s+-\\s+virtio\\s+${lease.mac}`));
    expect((await virsh('dumpxml', vm)).stdout).to.include("<alias name='ua-vfwire-0'/>");
    const log = readFileSync(join(sim!.a.dir, 'log/vfwire.log'), 'utf8');
    expect(log).to.match(new RegExp(`"message":"attached".*"vm":"${vm}"`));
    // status: how long the start waited for its VF; IPsec is off in this config.
    const status = JSON.parse((await vfwire(['--config', sim!.a.configPath, 'status', '--json'])).stdout) as {
      leases: { vm: string; attachMs?: number }[];
      vnis: { vni: number; peers: string[]; encryption: { address: string; state: string }[] }[];
    };
    const ms = status.leases.find((l) => l.vm === vm)?.attachMs;
    expect(ms, 'lease to attached, ms').to.equal(Date.parse(lease.attachedAt!) - Date.parse(lease.since));
    expect(ms).to.be.within(1, 60_000);
    const vniState = status.vnis.find((v) => v.vni === VNI)!;
    expect(vniState.peers, "the VNI's peers (host B)").to.have.length(1);
    expect(vniState.encryption).to.deep.equal(
      vniState.peers.map((address) => ({ peer: 'sim-b', address, state: 'off' })),
    );
    expect((await vfwire(['--config', sim!.a.configPath, 'status'])).stdout).to.match(/TO ATTACH[\s\S]*\d+\.\d\d s/);

    expect((await virsh('destroy', vm)).exitCode).to.equal(0);
    await expectNothingLeft();
  });

  it('a q35 VM with too few empty root ports is refused at start; vfwire vm set adds them and it gets every VF', async () => {
    // Three ports, two taken by libvirt's USB controller and balloon: one left for two VFs.
    const vm = await define('q35', { ifaces: [OFF, OFF], machine: 'q35', rootPorts: 3 });
    const refused = await virsh('start', vm);
    expect(refused.exitCode).to.not.equal(0);
    expect(refused.stderr).to.include(
      `2 vfwire interfaces need 2 hot-plug slots, this q35 VM has 1 empty pcie-root-port: run vfwire vm set ${vm} (it adds 1)`,
    );
    await expectNothingLeft();
    const before = await vmSlotsCheck({ libvirtUri: 'qemu:///system' });
    expect(before).to.include({
      status: 'fail',
      fix: 'as each VM says (q35: vfwire vm set VM adds the missing pcie-root-ports)',
    });
    expect(before.detail).to.include(`${vm}: 2 vfwire interfaces need 2 hot-plug slots`);
    const set = await vfwire(['--config', sim!.a.configPath, 'vm', 'set', vm]);
    expect(set.code, set.stderr).to.equal(0);
    expect(set.stdout).to.include(`${vm}: added 1 pcie-root-port to the persistent definition`);
    expect((await virsh('dumpxml', '--inactive', vm)).stdout.match(/model='pcie-root-port'/g)).to.have.length(4);
    expect((await vmSlotsCheck({ libvirtUri: 'qemu:///system' })).detail, 'doctor after').to.not.include(`${vm}:`);
    const again = await vfwire(['--config', sim!.a.configPath, 'vm', 'set', vm]);
    expect(again.stdout, 'a second set adds nothing').to.not.include('added');
    const start = await virsh('start', vm);
    expect(start.exitCode, start.stderr).to.equal(0);
    const attached = await waitFor('both live attaches', async () => {
      const mine = (await leases()).filter((l) => l.vm === vm);
      return mine.length === 2 && mine.every((l) => l.attachedAt) ? mine : undefined;
    });
    const live = (await virsh('dumpxml', vm)).stdout;
    for (const l of attached) expect(live).to.include(`<mac address='${l.mac}'/>`);
    expect((await virsh('destroy', vm)).exitCode).to.equal(0);
    await expectNothingLeft();
  });

  it('an untagged VM starts and stops with no vfwire trace', async () => {
    const vm = await define('plain');
    expect((await virsh('start', vm)).exitCode).to.equal(0);
    expect((await virsh('destroy', vm)).exitCode).to.equal(0);
    expect(await leases()).to.deep.equal([]);
    expect(readFileSync(join(sim!.a.dir, 'log/vfwire.log'), 'utf8')).not.to.include(vm);
  });

  it("with every VF leased, the next start fails with vfwire's one line and leaks nothing", async () => {
    const [a, b, c] = [
      await define('full1', { ifaces: [OFF] }),
      await define('full2', { ifaces: [OFF] }),
      await define('full3', { ifaces: [OFF] }),
    ];
    for (const vm of [a, b]) expect((await virsh('start', vm)).exitCode).to.equal(0);
    const third = await virsh('start', c);
    expect(third.exitCode).to.not.equal(0);
    expect(third.stderr).to.include(`vfwire: vm ${c}: interface 0: no free VF on enp3s0f0np0 (2 usable, all leased`);
    expect((await leases()).map((l) => l.vm).sort()).to.deep.equal([a, b].sort());
    for (const vm of [a, b]) await virsh('destroy', vm);
    await expectNothingLeft();
  });

  it('invalid metadata refuses the start, naming the field', async () => {
    const vm = await define('badvni', { ifaces: ['vni="0"'] });
    const r = await virsh('start', vm);
    expect(r.exitCode).to.not.equal(0);
    expect(r.stderr).to.include(`vfwire: vm ${vm}: interface 0: vni: must be an integer 1..16777215`);
    expect((await virsh('domstate', vm)).stdout.trim()).to.equal('shut off');
  });

  it('leases survive a daemon restart; a QEMU killed with SIGKILL leaves nothing behind', async () => {
    const vm = await define('sturdy', { ifaces: [OFF] });
    expect((await virsh('start', vm)).exitCode).to.equal(0);
    await waitFor('the live attach', async () => ((await leaseOf(vm))?.attachedAt ? true : undefined));
    await restartLibvirtd();
    expect((await virsh('domstate', vm)).stdout.trim()).to.equal('running');
    expect((await leaseOf(vm))?.state).to.equal('active');

    const pid = Number(readFileSync(`/run/libvirt/qemu/${vm}.pid`, 'utf8'));
    await execa('kill', ['-KILL', String(pid)]);
    await waitFor('libvirt to notice', async () =>
      (await virsh('domstate', vm)).stdout.trim() === 'shut off' ? true : undefined,
    );
    await expectNothingLeft();
  });

  it('vfwire gc frees what a crash left: a lease without its VM and an unrecorded bridge', async () => {
    // A prepare whose VM never ran (libvirtd died right after the hook, say), an hour ago...
    const ghost = '00000000-0000-4000-8000-0000000000aa';
    const xml = `<domain><name>ghost</name><uuid>${ghost}</uuid><metadata><v:net xmlns:v="https://vfwire.dev/xmlns/1.0"><v:interface ${OFF}/></v:net></metadata></domain>`;
    expect((await runHook(sim!.a.configPath, 'ghost', 'prepare', 'begin', xml)).code).to.equal(0);
    await withLedger(join(sim!.a.dir, 'state'), async (txn) => {
      txn.data.leases[`${ghost}/0`]!.since = new Date(Date.now() - 3_600_000).toISOString();
      await txn.save();
    });
    // ... and a bridge of a VNI the ledger never heard of.
    const orphan = `vfwbr${VNI + 1}`;
    await runner.run({ argv: ['ip', 'link', 'add', orphan, 'type', 'bridge'] });

    const gc = (...args: string[]) =>
      execa('node', [CLI, '--config', sim!.a.configPath, 'gc', ...args], { reject: false });
    const dry = await gc('--dry-run');
    expect(dry.exitCode, dry.stderr).to.equal(0);
    expect(dry.stdout)
      .to.include('lease ghost#0: its domain is not running')
      .and.include(`leftover ${orphan}: not in the ledger`)
      .and.include(`ip link del ${orphan}`);
    expect((await leases()).map((l) => l.vm)).to.deep.equal(['ghost']);
    expect((await rootLinks()).has(orphan)).to.equal(true);

    const real = await gc();
    expect(real.exitCode, real.stderr).to.equal(0);
    expect(real.stdout).to.include('released 1 lease(s), removed 1 leftover(s)');
    expect((await rootLinks()).has(orphan)).to.equal(false);
    await expectNothingLeft();
    expect((await gc()).stdout.trim()).to.equal('nothing to collect');
  });

  it('a VF that cannot be attached stops the VM (fail closed)', async () => {
    // Without ACPI the pc machine's PCI bus has no hotplug: libvirt refuses the live attach.
    const vm = await define('nohotplug', { ifaces: [OFF], acpi: false });
    expect((await virsh('start', vm)).exitCode).to.equal(0);
    await waitFor('the worker to stop the VM', async () =>
      (await virsh('domstate', vm)).stdout.trim() === 'shut off' ? true : undefined,
    );
    await expectNothingLeft();
    expect(readFileSync(join(sim!.a.dir, 'log/vfwire.log'), 'utf8')).to.match(
      /"error":"[^"]*does not support hotplugging".*"message":"attach failed"/,
    );
  });

  it('with on_attach_failure: keep the VM runs on without the VF, which goes back to the pool', async () => {
    editConfig(sim!.a.configPath, (doc) => {
      doc.on_attach_failure = 'keep';
    });
    try {
      const vm = await define('keep', { ifaces: [OFF], acpi: false });
      expect((await virsh('start', vm)).exitCode).to.equal(0);
      await waitFor('the worker to release the lease', async () =>
        (await leaseOf(vm)) === undefined &&
        /"policy":"keep"/.test(readFileSync(join(sim!.a.dir, 'log/vfwire.log'), 'utf8'))
          ? true
          : undefined,
      );
      expect((await virsh('domstate', vm)).stdout.trim()).to.equal('running');
      await expectNothingLeft();
      expect((await virsh('destroy', vm)).exitCode).to.equal(0);
      await expectNothingLeft();
    } finally {
      editConfig(sim!.a.configPath, (doc) => {
        delete doc.on_attach_failure;
      });
    }
  });
});
