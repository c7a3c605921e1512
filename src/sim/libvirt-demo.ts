// The second half of `vfwire sim demo`: the real thing on this machine's libvirt daemon. The sim
// host A becomes a libvirt host; diskless QEMU VMs tagged with VNIs are started with plain
// `virsh start`, get their VF live, and give it back on `virsh destroy`.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oneLine } from '../errors.js';
import type { Runner } from '../exec/runner.js';
import { readLedger } from '../ledger/store.js';
import type { DemoIo } from './demo.js';
import { defineDiskless, installSimHook, libvirtReachable, removeDomain, removeSimHook, restartLibvirtd, virsh, virtType, waitFor } from './libvirtd.js';
import { simDown, simUp } from './sim-host.js';
import type { SimOptions } from './topology.js';

export async function runLibvirtDemo(opts: SimOptions, runner: Runner, io: DemoIo): Promise<boolean> {
  if (!(await libvirtReachable())) {
    io.say('libvirtd is not reachable at qemu:///system: skipping the libvirt part (scripts/bootstrap.sh starts it).');
    return false;
  }
  const [a] = await simUp({ ...opts, libvirt: true }, runner);
  const stateDir = join(a!.dir, 'state');
  const hook = installSimHook(`${opts.prefix}-vfwire`, a!.configPath);
  const vms = { web: `${opts.prefix}-web`, db: `${opts.prefix}-db`, plain: `${opts.prefix}-plain`, typo: `${opts.prefix}-typo` };
  let ok = false;
  try {
    await restartLibvirtd(); // libvirt discovers hooks only when it starts
    const type = await virtType();
    const dir = mkdtempSync(join(tmpdir(), 'vfwire-demo-'));
    await defineDiskless(dir, { name: vms.web, type, ifaces: ['vni="100" encrypt="off"'] });
    await defineDiskless(dir, { name: vms.db, type, ifaces: ['vni="200" encrypt="off"'] });
    await defineDiskless(dir, { name: vms.plain, type });
    await defineDiskless(dir, { name: vms.typo, type, ifaces: ['vin="100"'] });
    io.say(`6. Diskless QEMU VMs (${type === 'kvm' ? 'KVM' : 'TCG'}) defined in libvirt: ${vms.web} (VNI 100), ${vms.db} (VNI 200), ${vms.plain} (untagged), ${vms.typo} (metadata with a typo)`);
    for (const vm of Object.values(vms)) {
      const r = await virsh('start', vm);
      io.say(`   virsh start ${vm}: ${r.exitCode === 0 ? 'started' : `refused: ${r.stderr.trim().split('\n').pop()!.replace(/^.*unexpected exit status 1: /, '')}`}`);
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
    await waitFor('the release', async () => (Object.keys((await readLedger(stateDir)).leases).length === 0 ? true : undefined));
    await io.status('a');
    ok = true;
  } catch (err) {
    io.say(`   libvirt part failed: ${oneLine(err)}`);
  } finally {
    for (const vm of Object.values(vms)) await removeDomain(vm);
    removeSimHook(hook);
    await restartLibvirtd().catch(() => undefined);
    await simDown({ ...opts, libvirt: true }, runner);
  }
  return ok;
}
