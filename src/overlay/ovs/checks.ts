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

/**
 * `dpctl/dump-flows` lines with actions, ARP apart: mlx5 matches no ARP field (en_tc.c
 * __parse_cls_flower has no FLOW_DISSECTOR_KEY_ARP), so the flows of vfwire's ARP sender check
 * always stay in OVS's kernel datapath, and at ARP's rate that costs nothing.
 */
export function countDatapathFlows(stdout: string): { arp: number; other: number } {
  const flows = stdout.split('\n').filter((l) => l.includes('actions:'));
  const arp = flows.filter((l) => l.includes('eth_type(0x0806)')).length;
  return { arp, other: flows.length - arp };
}

// With hw-offload the datapath flows of a VM's traffic should be in the NIC; flows in software
// (OVS's kernel datapath, or tc's with tc-policy none) mean that traffic runs at CPU speed.
async function offloadedCheck(host: OvsHost, runner: Runner, ledger: LedgerData): Promise<CheckResult> {
  const check = 'ovs offload';
  if (!Object.values(ledger.vnis).some((v) => v.ovs)) return pass(check, 'no leases on OVS VNIs');
  try {
    const ctl = await vswitchdControl(host.runDir);
    const dump = async (type: string) =>
      countDatapathFlows(
        (await runner.run({ argv: ['ovs-appctl', '-t', ctl, 'dpctl/dump-flows', `type=${type}`] })).stdout,
      );
    const offloaded = await dump('offloaded');
    // ovs-vswitchd(8) dpctl/dump-flows: non-offloaded is the kernel datapath's flows and tc's software-only ones (tc-policy none)
    const kernel = await dump('non-offloaded');
    const arp = kernel.arp ? `; ${kernel.arp} ARP flow(s) in software, as mlx5 matches no ARP field` : '';
    const inHw = offloaded.arp + offloaded.other;
    if (kernel.other === 0) return pass(check, `${inHw} datapath flow(s) offloaded${arp}`);
    return warn(
      check,
      `${kernel.other} datapath flow(s) not offloaded (${inHw} offloaded${arp})`,
      'ovs-appctl dpctl/dump-flows type=non-offloaded shows them; check hw-tc-offload on the PF and representors (ethtool -k) and ovs-vswitchd.log',
    );
  } catch (err) {
    return fail(check, oneLine(err), 'see the detail (ovs-appctl dpctl/dump-flows)');
  }
}
