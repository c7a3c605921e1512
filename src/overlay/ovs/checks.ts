// doctor's lines for the OVS overlay: the daemons answer, the bridge is as host setup makes it,
// every OVS VNI's rules are on it as the ledger implies, and on a real host OVS offloads.

import { fail, pass, warn, type CheckResult } from '../../check-result.js';
import type { Config } from '../../config/config.js';
import { oneLine } from '../../errors.js';
import type { Runner } from '../../exec/runner.js';
import type { LedgerData } from '../../ledger/types.js';
import { ovsDaemonsUp, vswitchdControl } from './daemons.js';
import { vniFlows } from './flows.js';
import { planOvsBridge, readOvsBridge } from './host-bridge.js';
import { ovsVniOf } from './membership.js';
import { ofctl, type OvsHost } from './model.js';
import { ovsHostOf, ovsOffloadOf } from './settings.js';

export async function ovsChecks(cfg: Config, runner: Runner, ledger: LedgerData): Promise<CheckResult[]> {
  const host = ovsHostOf(cfg);
  const up = await ovsDaemonsUp(host, runner);
  if (!up.db || !up.vswitchd)
    return [
      fail(
        'openvswitch',
        `${up.db ? 'ovs-vswitchd' : 'ovsdb-server'} does not answer (run dir ${host.runDir})`,
        'systemctl start openvswitch-switch, or vfwire host setup where there is no systemd',
      ),
    ];
  const out = [
    await versionCheck(runner),
    await bridgeCheck(cfg, host, runner),
    await rulesCheck(host, runner, ledger),
  ];
  if (cfg.backend === 'real') out.push(await offloadedCheck(host, runner, ledger));
  return out;
}

// OVS 3.1.0 counts 0 CPU cores in a boot's first seconds and then runs the kernel datapath with
// no upcall handlers, every upcall lost (lib/ovs-thread.c count_cpu_cores; fixed in 3.1.1 by
// fff04b838 and b2b467b3a).
async function versionCheck(runner: Runner): Promise<CheckResult> {
  const check = 'openvswitch version';
  try {
    const line = (await runner.run({ argv: ['ovs-vswitchd', '--version'] })).stdout.split('\n')[0] ?? '';
    const v = /\) (\d+\.\d+\.\d+)/.exec(line)?.[1] ?? 'unknown';
    if (v === '3.1.0')
      return warn(
        check,
        `${v}: started in a boot's first ~10 s it may count no CPUs and lose every upcall (fixed in 3.1.1)`,
        'ovs-appctl dpctl/show: if "lost" grows with "missed", restart openvswitch-switch',
      );
    const [major = 0, minor = 0] = v.split('.').map(Number);
    if (major < 3 || (major === 3 && minor < 1))
      return warn(
        check,
        `${v}: vfwire's OVS overlay is proven with 3.1 (Debian 12) and later`,
        'upgrade openvswitch-switch',
      );
    return pass(check, v);
  } catch (err) {
    return fail(check, oneLine(err), 'install openvswitch-switch');
  }
}

async function bridgeCheck(cfg: Config, host: OvsHost, runner: Runner): Promise<CheckResult> {
  const check = `ovs bridge ${host.bridge}`;
  try {
    const todo = planOvsBridge(host, ovsOffloadOf(cfg), await readOvsBridge(host, runner));
    if (!todo.length) return pass(check, 'fail_mode secure, VXLAN port as configured');
    return fail(check, `differs: ${todo.map((s) => s.kind).join(', ')}`, 'vfwire host setup');
  } catch (err) {
    return fail(check, oneLine(err), 'see the detail; vfwire host setup');
  }
}

// Each OVS VNI's rules by its cookie: as many as its members and peers imply (flows.ts).
async function rulesCheck(host: OvsHost, runner: Runner, ledger: LedgerData): Promise<CheckResult> {
  const check = 'ovs rules';
  const vnis = Object.values(ledger.vnis).filter((v) => v.ovs);
  if (!vnis.length) return pass(check, 'no leases on OVS VNIs');
  const bad: string[] = [];
  for (const v of vnis) {
    const want = vniFlows(ovsVniOf(ledger, v.vni)).length - 1;
    try {
      const shown = await runner.run({
        argv: ofctl(v.ovs!, ['--no-stats'], 'dump-flows', `cookie=0x${v.vni.toString(16)}/-1`),
      });
      const have = shown.stdout.split('\n').filter((l) => l.includes('actions=')).length;
      if (have !== want) bad.push(`VNI ${v.vni}: ${have} of ${want} rules`);
    } catch (err) {
      bad.push(`VNI ${v.vni}: ${oneLine(err)}`);
    }
  }
  if (!bad.length) return pass(check, `${vnis.length} VNI(s), every rule on ${host.bridge}`);
  return fail(check, bad.join('; '), 'vfwire gc, or restart the VMs');
}

// With hw-offload the datapath flows of a VM's traffic should be in the NIC; flows only in the
// kernel datapath mean the overlay runs at CPU speed (tc-policy none) or not at all (skip_sw).
async function offloadedCheck(host: OvsHost, runner: Runner, ledger: LedgerData): Promise<CheckResult> {
  const check = 'ovs offload';
  if (!Object.values(ledger.vnis).some((v) => v.ovs)) return pass(check, 'no leases on OVS VNIs');
  try {
    const ctl = await vswitchdControl(host.runDir);
    const count = async (type: string) =>
      (await runner.run({ argv: ['ovs-appctl', '-t', ctl, 'dpctl/dump-flows', `type=${type}`] })).stdout
        .split('\n')
        .filter((l) => l.includes('actions:')).length;
    const [offloaded, kernel] = [await count('offloaded'), await count('ovs')];
    if (kernel === 0) return pass(check, `${offloaded} datapath flow(s) offloaded, none in the kernel only`);
    return warn(
      check,
      `${kernel} datapath flow(s) not offloaded (${offloaded} offloaded)`,
      'ovs-appctl dpctl/dump-flows type=ovs shows them; check hw-tc-offload on the PF and representors (ethtool -k) and ovs-vswitchd.log',
    );
  } catch (err) {
    return fail(check, oneLine(err), 'see the detail (ovs-appctl dpctl/dump-flows)');
  }
}
