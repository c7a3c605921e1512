// End to end with real guests: Linux VMs (Debian's kernel, a busybox initramfs; guest/) on
// the sim's libvirt host A get their NIC from vfwire's live attach, find it, configure it from
// the kernel command line and talk over the tenant overlay to netns guests on sim host B. The
// guests report on their serial console ("VFW-..." lines, see guest/init.sh).
//
// Addresses: every guest is in 198.19.100.0/24, whatever its VNI, so what keeps tenants apart
// is the overlay, not routing. Two VNIs, random like in libvirt.test.ts because the libvirt
// host's bridges live in the root netns ("tenant 100" and "tenant 200" below):
//   .1 vm1 (A, tenant 100)   .2 b100 (B, tenant 100)   .3 vm2 (A, tenant 200)   .4 b200 (B, tenant 200)
//   .5 .. .9 the single-VM scenarios on tenant 100

import { expect } from 'chai';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Lease } from '../../src/ledger/types.js';
import { maxGuestMtu } from '../../src/overlay/mtu.js';
import { startGuest, stopGuest } from '../../src/sim/guest.js';
import { installSimHook, libvirtReachable, removeDomain, removeSimHook, virsh } from '../../src/sim/libvirtd.js';
import { waitFor } from '../../src/wait.js';
import { ping } from '../../src/sim/reachability.js';
import { guestNetns, UNDERLAY_MTU } from '../../src/sim/topology.js';
import { vfwire } from '../helpers/cli.js';
import {
  downTestSim,
  expectHostAClean,
  leaseOf as leaseOfOn,
  leasesOn,
  links,
  runner,
  upTestSim,
  type TestSim,
} from '../helpers/sim.js';
import {
  buildGuestImage,
  consoleTail,
  defineGuest,
  guestVirtType,
  readConsole,
  waitForConsole,
  type GuestImage,
  type GuestVm,
  type VfwLine,
} from '../../src/sim/linux-guest.js';

describe('e2e: real guests on the overlay', function () {
  this.timeout(300_000);
  let sim: TestSim | undefined;
  let hook: string | undefined;
  let image: GuestImage;
  let type: 'kvm' | 'qemu' = 'qemu';
  const dir = mkdtempSync(join(tmpdir(), 'vfwt-guests-'));
  const defined: string[] = [];
  const netnsGuests: string[] = [];
  const T100 = 7_000_000 + Math.floor(Math.random() * 900_000);
  const T200 = T100 + 1;
  const NET = '198.19.100';

  before(async function () {
    if (!(await libvirtReachable())) {
      if (process.env.CI) throw new Error('libvirtd is not reachable at qemu:///system');
      console.log(
        '      skipped: libvirtd is not reachable at qemu:///system (run scripts/bootstrap.sh; with CI set this fails)',
      );
      this.skip();
    }
    // QEMU (as libvirt-qemu) writes the consoles here.
    chmodSync(dir, 0o755);
    image = await buildGuestImage();
    type = await guestVirtType(image);
    console.log(`      guests: ${type === 'kvm' ? 'KVM' : 'TCG (no KVM that boots Linux here)'}, image ${image.dir}`);
    sim = await upTestSim(8, { libvirt: true });
    hook = await installSimHook(`${sim.opts.prefix}-vfwire`, sim.a.configPath);
    for (const [name, vni, host] of [
      ['b100', T100, 2],
      ['b200', T200, 4],
    ] as const) {
      await startGuest(sim.opts, { name, host: 'b', vni, ip: `${NET}.${host}/24`, encrypt: 'off' }, runner);
      netnsGuests.push(name);
    }
  });

  after(async () => {
    for (const name of defined) await removeDomain(name);
    for (const name of netnsGuests) await stopGuest(sim!.opts, name, runner).catch(() => undefined);
    if (hook) await removeSimHook(hook);
    await downTestSim(sim);
    rmSync(dir, { recursive: true, force: true });
  });

  // A failed test shows what its guests printed, then stops them so the next test starts clean.
  let current: string[] = [];
  beforeEach(() => {
    current = [];
  });
  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    // Other suites' `vfwire gc` on a libvirt sim sweeps every vfw bridge/VXLAN of the root netns.
    const host = await rootLinks();
    console.log(
      `      root netns: ${[T100, T200]
        .flatMap((v) => [`vfwbr${v}`, `vfwvx${v}`])
        .map((n) => `${n} ${host.has(n) ? 'present' : 'missing'}`)
        .join(', ')}`,
    );
    for (const vm of current) {
      console.log(
        `      --- console of ${vm} (${(await virsh('domstate', vm)).stdout.trim()}):\n${consoleTail(consoleOf(vm))}`,
      );
      await virsh('destroy', vm);
    }
    await waitFor('leases to be released', async () => ((await leases()).length === 0 ? true : undefined)).catch(
      (err: unknown) => console.log(`      ${String(err)}`),
    );
  });

  // Boot budget: KVM boots this guest in about a second, TCG in about five on a small machine.
  const bootMs = () => (type === 'kvm' ? 30_000 : 90_000);
  const vmName = (n: string) => `${sim!.opts.prefix}-${n}`;
  const consoleOf = (vm: string) => join(dir, `${vm}.console.log`);
  const bNetns = (guest: string) => guestNetns(sim!.opts, guest);

  async function defineVm(n: string, ifaces: string[], params: GuestVm['params']): Promise<string> {
    const name = vmName(n);
    await defineGuest(dir, { name, type, image, consoleLog: consoleOf(name), ifaces, params });
    defined.push(name);
    current.push(name);
    return name;
  }
  async function start(vm: string): Promise<number> {
    const t0 = Date.now();
    const r = await virsh('start', vm);
    expect(r.exitCode, r.stderr).to.equal(0);
    return t0;
  }
  const waitLine = (vm: string, kind: string, ms = bootMs()) =>
    waitForConsole(consoleOf(vm), `VFW-${kind}`, (l) => l.kind === kind, ms);

  const leases = () => leasesOn(sim!.a);
  const leaseOf = (vm: string) => leaseOfOn(sim!.a, vm);
  const rootLinks = () => links();
  const expectNothingLeft = () => expectHostAClean(sim!, [T100, T200]);
  async function stopAll(...vms: string[]): Promise<void> {
    for (const vm of vms) await virsh('destroy', vm);
    await expectNothingLeft();
  }
  /** DF ping from a host-B netns guest: iputils, -M do, `size` bytes of ICMP payload. */
  async function dfPing(guest: string, ip: string, size: number): Promise<boolean> {
    const r = await execa(
      'ip',
      [
        'netns',
        'exec',
        bNetns(guest),
        'ping',
        '-n',
        '-q',
        '-c',
        '2',
        '-i',
        '0.2',
        '-W',
        '2',
        '-M',
        'do',
        '-s',
        String(size),
        ip,
      ],
      { reject: false },
    );
    return r.exitCode === 0;
  }

  it('tenant 100: a VM and a host-B guest ping each other; tenant 200 reaches neither, on either host', async () => {
    const vm1 = await defineVm('vm1', [`vni="${T100}" encrypt="off"`], {
      ip: `${NET}.1/24`,
      peers: `${NET}.2,${NET}.3,${NET}.4`,
      rounds: 40,
    });
    const vm2 = await defineVm('vm2', [`vni="${T200}" encrypt="off"`], {
      ip: `${NET}.3/24`,
      peers: `${NET}.4,${NET}.1,${NET}.2`,
      rounds: 40,
    });
    await start(vm1);
    await start(vm2);
    // Each guest's first peer is its own tenant's guest on host B: proof its NIC works at all.
    for (const vm of [vm1, vm2])
      expect((await waitLine(vm, 'RESULT')).fields.ping, `${vm} -> its tenant's host-B guest`).to.equal('ok');

    // Both are up: judge the ping rounds each VM runs from now on (two full rounds of its peers).
    const rounds = new Map<string, VfwLine[]>();
    for (const vm of [vm1, vm2]) {
      const before = readConsole(consoleOf(vm)).filter((l) => l.kind === 'PING').length;
      await waitForConsole(
        consoleOf(vm),
        'two more ping rounds',
        (_, all) => all.filter((l) => l.kind === 'PING').length >= before + 6,
        60_000,
      );
      rounds.set(
        vm,
        readConsole(consoleOf(vm))
          .filter((l) => l.kind === 'PING')
          .slice(before),
      );
    }
    const seen = (vm: string, peer: number) =>
      rounds
        .get(vm)!
        .filter((l) => l.fields.peer === `${NET}.${peer}`)
        .map((l) => l.fields.result);
    expect(seen(vm1, 2), 'vm1 -> b100 (same tenant)').to.include('ok');
    expect(seen(vm1, 3), 'vm1 -> vm2 (same host, other tenant)').to.not.include('ok');
    expect(seen(vm1, 4), 'vm1 -> b200 (other host, other tenant)').to.not.include('ok');
    expect(seen(vm2, 4), 'vm2 -> b200 (same tenant)').to.include('ok');
    expect(seen(vm2, 1), 'vm2 -> vm1').to.not.include('ok');
    expect(seen(vm2, 2), 'vm2 -> b100').to.not.include('ok');

    // And from host B's netns guests, with the host's own ping.
    expect(await ping(bNetns('b100'), `${NET}.1`, runner), 'b100 -> vm1').to.equal(true);
    expect(await ping(bNetns('b100'), `${NET}.3`, runner), 'b100 -> vm2').to.equal(false);
    expect(await ping(bNetns('b200'), `${NET}.3`, runner), 'b200 -> vm2').to.equal(true);
    expect(await ping(bNetns('b200'), `${NET}.1`, runner), 'b200 -> vm1').to.equal(false);
    await stopAll(vm1, vm2);
  });

  it('the NIC appears in the guest soon after virsh start, with the MAC of the lease and the metadata', async () => {
    const MAC = '52:54:00:7e:57:06';
    const withMac = await defineVm('mac', [`vni="${T100}" encrypt="off" mac="${MAC}"`], { ip: `${NET}.6/24` });
    const derived = await defineVm('derived', [`vni="${T100}" encrypt="off"`], { ip: `${NET}.7/24` });
    const t0 = { [withMac]: await start(withMac), [derived]: await start(derived) };

    const status = async () =>
      JSON.parse((await vfwire(['--config', sim!.a.configPath, 'status', '--json'])).stdout) as { leases: Lease[] };
    for (const vm of [withMac, derived]) {
      const nic = await waitLine(vm, 'NIC');
      const ms = Date.now() - t0[vm]!;
      const boot = readConsole(consoleOf(vm)).find((l) => l.kind === 'BOOT')!;
      const lease = (await status()).leases.find((l) => l.vm === vm)!;
      const attachMs = Date.parse(lease.attachedAt!) - t0[vm]!;
      console.log(
        `      ${vm}: NIC ${nic.fields.nic} in the guest ${ms} ms after virsh start (attach ${attachMs} ms; guest: init at ${boot.fields.t_ms} ms, NIC at ${nic.fields.t_nic_ms} ms since boot)`,
      );
      expect(ms).to.be.below(bootMs());
      expect(nic.fields.mac, 'MAC in the guest').to.equal(lease.mac);
      if (vm === withMac) expect(lease.mac, 'lease MAC').to.equal(MAC);
    }
    await stopAll(withMac, derived);
  });

  it('MTU 9000 end to end: a DF ping of the largest size fits both ways, one byte more does not', async () => {
    // The overlay carries 9216 - 50 = 9166 bytes, so the VF's 9000 fits: 9000 - 20 (IP) - 8 (ICMP).
    const MTU = 9000;
    const LARGEST = MTU - 28;
    expect(maxGuestMtu(UNDERLAY_MTU, false)).to.be.at.least(MTU);
    const vm = await defineVm('mtu', [`vni="${T100}" encrypt="off" mtu="${MTU}"`], {
      ip: `${NET}.5/24`,
      peers: `${NET}.2`,
      mtu: MTU,
      dfsize: LARGEST,
    });
    await start(vm);
    const nic = await waitLine(vm, 'NIC');
    expect(nic.fields.mtu, 'MTU virtio offered the guest (libvirt <mtu>)').to.equal(String(MTU));
    expect((await waitLine(vm, 'RESULT')).fields.ping).to.equal('ok');
    const df = readConsole(consoleOf(vm)).filter((l) => l.kind === 'DF');
    expect(
      df.map((l) => `${l.fields.size}:${l.fields.result}`),
      'DF pings from the VM',
    ).to.deep.equal([`${LARGEST}:ok`, `${LARGEST + 1}:fail`]);
    expect((await leaseOf(vm))?.mtu).to.equal(MTU);
    expect(await dfPing('b100', `${NET}.5`, LARGEST), `DF ${LARGEST} from host B`).to.equal(true);
    expect(await dfPing('b100', `${NET}.5`, LARGEST + 1), `DF ${LARGEST + 1} from host B`).to.equal(false);
    await stopAll(vm);
  });

  it('virsh shutdown (ACPI power-off in the guest) and virsh destroy both leave nothing behind; a restart gets a VF again', async () => {
    const vm = await defineVm('life', [`vni="${T100}" encrypt="off"`], {
      ip: `${NET}.8/24`,
      peers: `${NET}.2`,
      rounds: 0,
    });
    await start(vm);
    expect((await waitLine(vm, 'RESULT')).fields.ping).to.equal('ok');
    const sd = await virsh('shutdown', vm);
    expect(sd.exitCode, sd.stderr).to.equal(0);
    await waitFor(
      'the guest to power off',
      async () => ((await virsh('domstate', vm)).stdout.trim() === 'shut off' ? true : undefined),
      60_000,
    );
    expect(
      readConsole(consoleOf(vm)).some((l) => l.kind === 'POWEROFF' && l.fields.reason === 'acpi'),
      'guest saw the power button',
    ).to.equal(true);
    await expectNothingLeft();

    // Second life: the console may be truncated or appended to; look past the first power-off.
    await start(vm);
    const second = await waitForConsole(
      consoleOf(vm),
      'VFW-RESULT of the second start',
      (l, all) => {
        const lastOff = all.map((x) => x.kind).lastIndexOf('POWEROFF');
        return l.kind === 'RESULT' && all.indexOf(l) > lastOff;
      },
      bootMs(),
    );
    expect(second.fields.ping, 'second start pings').to.equal('ok');
    expect((await leaseOf(vm))?.attachedAt, 'second lease attached').to.be.a('string');
    expect((await virsh('destroy', vm)).exitCode).to.equal(0);
    await expectNothingLeft();
  });

  it('virsh detach-device of the vfwire NIC: the guest acknowledges the unplug', async () => {
    const vm = await defineVm('detach', [`vni="${T100}" encrypt="off"`], {
      ip: `${NET}.9/24`,
      peers: `${NET}.2`,
      rounds: 0,
    });
    await start(vm);
    const res = await waitLine(vm, 'RESULT');
    expect(res.fields.ping).to.equal('ok');
    const det = await virsh('detach-device-alias', vm, 'ua-vfwire-0', '--live');
    expect(det.exitCode, det.stderr).to.equal(0);
    const gone = await waitLine(vm, 'NIC-GONE', 30_000);
    expect(gone.fields.nic).to.equal(res.fields.nic);
    await waitFor(
      'libvirt to drop the device',
      async () => ((await virsh('dumpxml', vm)).stdout.includes('ua-vfwire-0') ? undefined : true),
      30_000,
    );
    expect(await ping(bNetns('b100'), `${NET}.9`, runner), 'b100 -> detached VM').to.equal(false);
    expect((await virsh('domstate', vm)).stdout.trim()).to.equal('running');
    await stopAll(vm);
  });

  // No hook runs on a device detach: vfwire gc notices the lease's alias (ua-vfwire-<index>) is
  // gone from its running domain's live XML and frees it.
  it('virsh detach-device of the vfwire NIC: vfwire gc frees the lease while the VM runs on', async () => {
    const vm = await defineVm('detachgc', [`vni="${T100}" encrypt="off"`], {
      ip: `${NET}.10/24`,
      peers: `${NET}.2`,
      rounds: 0,
    });
    await start(vm);
    expect((await waitLine(vm, 'RESULT')).fields.ping).to.equal('ok');
    expect((await virsh('detach-device-alias', vm, 'ua-vfwire-0', '--live')).exitCode).to.equal(0);
    await waitLine(vm, 'NIC-GONE', 30_000);
    await waitFor(
      'libvirt to drop the device',
      async () => ((await virsh('dumpxml', vm)).stdout.includes('ua-vfwire-0') ? undefined : true),
      30_000,
    );
    const gc = await vfwire(['--config', sim!.a.configPath, 'gc']);
    expect(gc.code, gc.stderr).to.equal(0);
    expect(gc.stdout).to.include(`lease ${vm}#0:`);
    await expectNothingLeft();
    expect((await virsh('domstate', vm)).stdout.trim()).to.equal('running');
    await virsh('destroy', vm);
  });
});
