// The second half of `vfwire sim demo`: the real thing on this machine's libvirt daemon. The sim
// host A becomes a libvirt host; diskless QEMU VMs tagged with VNIs are started with plain
// `virsh start`, get their VF live, and give it back on `virsh destroy`.

import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oneLine } from '../errors.js';
import type { Runner } from '../exec/runner.js';
import { readLedger } from '../ledger/store.js';
import type { DemoIo } from './demo.js';
import {
  defineDiskless,
  installSimHook,
  libvirtReachable,
  removeDomain,
  removeSimHook,
  virsh,
  virtType,
} from './libvirtd.js';
import { waitFor } from '../wait.js';
import { makeTable } from '../table.js';
import { startGuest, stopGuest } from './guest.js';
import { buildGuestImage, defineGuest, guestVirtType, readConsole, waitForConsole } from './linux-guest.js';
import { simDown, simUp } from './sim-host.js';
import type { SimOptions } from './topology.js';

export async function runLibvirtDemo(
  opts: SimOptions,
  runner: Runner,
  io: DemoIo,
  withGuests = false,
): Promise<boolean> {
  if (!(await libvirtReachable())) {
    io.say('libvirtd is not reachable at qemu:///system: skipping the libvirt part (scripts/bootstrap.sh starts it).');
    return false;
  }
  const [a] = await simUp({ ...opts, libvirt: true }, runner);
  const stateDir = join(a!.dir, 'state');
  const vms = {
    web: `${opts.prefix}-web`,
    db: `${opts.prefix}-db`,
    plain: `${opts.prefix}-plain`,
    typo: `${opts.prefix}-typo`,
  };
  let hook: string | undefined;
  let ok = false;
  try {
    hook = await installSimHook(`${opts.prefix}-vfwire`, a!.configPath);
    const type = await virtType();
    const dir = mkdtempSync(join(tmpdir(), 'vfwire-demo-'));
    await defineDiskless(dir, { name: vms.web, type, ifaces: ['vni="100" encrypt="off"'] });
    await defineDiskless(dir, { name: vms.db, type, ifaces: ['vni="200" encrypt="off"'] });
    await defineDiskless(dir, { name: vms.plain, type });
    await defineDiskless(dir, { name: vms.typo, type, ifaces: ['vin="100"'] });
    io.say(
      `6. Diskless QEMU VMs (${type === 'kvm' ? 'KVM' : 'TCG'}) defined in libvirt: ${vms.web} (VNI 100), ${vms.db} (VNI 200), ${vms.plain} (untagged), ${vms.typo} (metadata with a typo)`,
    );
    for (const vm of Object.values(vms)) {
      const r = await virsh('start', vm);
      io.say(
        `   virsh start ${vm}: ${
          r.exitCode === 0
            ? 'started'
            : `refused: ${r.stderr
                .trim()
                .split('\n')
                .pop()!
                .replace(/^.*unexpected exit status 1: /, '')}`
        }`,
      );
    }
    await waitFor('the live attach', async () => {
      const leases = Object.values((await readLedger(stateDir)).leases);
      return leases.length === 2 && leases.every((l) => l.attachedAt) ? true : undefined;
    });
    io.say('7. vfwire status on the libvirt host: each tagged VM leased a VF and the attach worker plugged it in live');
    await io.status('a');
    io.say(`   virsh domiflist ${vms.web}:`);
    io.say((await virsh('domiflist', vms.web)).stdout.trimEnd().replace(/^/gm, '   '));
    io.say('8. virsh destroy of every VM: the stop hooks give it all back');
    for (const vm of Object.values(vms)) await virsh('destroy', vm);
    await waitFor('the release', async () =>
      Object.keys((await readLedger(stateDir)).leases).length === 0 ? true : undefined,
    );
    await io.status('a');
    ok = withGuests ? await linuxGuests(opts, runner, io) : true;
  } catch (err) {
    io.say(`   libvirt part failed: ${oneLine(err)}`);
  } finally {
    for (const vm of Object.values(vms)) await removeDomain(vm);
    if (hook) await removeSimHook(hook).catch(() => undefined);
    await simDown({ ...opts, libvirt: true }, runner);
  }
  return ok;
}

// With --guests: two Linux VMs on host A (Debian's kernel, a busybox initramfs) that find their
// hot-plugged NIC and ping host B's netns guests of both tenants; only their own tenant answers.
async function linuxGuests(opts: SimOptions, runner: Runner, io: DemoIo): Promise<boolean> {
  io.say('9. Linux guests: building (or reusing) the guest image...');
  const image = await buildGuestImage();
  const type = await guestVirtType(image);
  const dir = mkdtempSync(join(tmpdir(), 'vfwire-demo-guests-'));
  chmodSync(dir, 0o755); // QEMU, as libvirt-qemu, writes the consoles here
  const net = '198.19.100';
  const b = [
    { name: 'bweb', vni: 100, ip: `${net}.2` },
    { name: 'bdb', vni: 200, ip: `${net}.3` },
  ];
  const vms = [
    { name: `${opts.prefix}-lweb`, vni: 100, ip: `${net}.11` },
    { name: `${opts.prefix}-ldb`, vni: 200, ip: `${net}.12` },
  ];
  try {
    for (const g of b)
      await startGuest(opts, { name: g.name, host: 'b', vni: g.vni, ip: `${g.ip}/24`, encrypt: 'off' }, runner);
    for (const vm of vms) {
      await defineGuest(dir, {
        name: vm.name,
        type,
        image,
        consoleLog: join(dir, `${vm.name}.log`),
        ifaces: [`vni="${vm.vni}" encrypt="off"`],
        params: { ip: `${vm.ip}/24`, peers: b.map((x) => x.ip).join(','), rounds: 1 },
      });
      await virsh('start', vm.name);
    }
    io.say(
      `   ${vms.map((v) => `${v.name} (VNI ${v.vni}, ${v.ip})`).join(' and ')} booting under ${type === 'kvm' ? 'KVM' : 'TCG'}; host B has ${b.map((x) => `${x.name} (VNI ${x.vni}, ${x.ip})`).join(' and ')}`,
    );
    const t = makeTable(['LINUX VM', 'PINGS', 'SAME VNI', 'REACHED', '']);
    let ok = true;
    for (const vm of vms) {
      const log = join(dir, `${vm.name}.log`);
      const nic = await waitForConsole(log, 'the NIC', (l) => l.kind === 'NIC', 120_000);
      await waitForConsole(
        log,
        'the pings',
        (_l, all) => all.filter((x) => x.kind === 'PING').length >= b.length,
        120_000,
      );
      for (const peer of b) {
        const reached =
          readConsole(log).find((l) => l.kind === 'PING' && l.fields.peer === peer.ip)?.fields.result === 'ok';
        const expected = peer.vni === vm.vni;
        ok &&= reached === expected;
        t.push([
          `${vm.name} (${nic.fields.nic} ${nic.fields.mac})`,
          `${peer.name} ${peer.ip}`,
          expected ? 'yes' : 'no',
          reached ? 'yes' : 'no',
          reached === expected ? 'ok' : 'WRONG',
        ]);
      }
    }
    io.say(t.toString());
    io.say(ok ? '   the guests saw their VFs and reached only their own tenant.' : '   GUEST ISOLATION PROOF FAILED');
    return ok;
  } finally {
    for (const vm of vms) await removeDomain(vm.name);
    for (const g of b) await stopGuest(opts, g.name, runner).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
