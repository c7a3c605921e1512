// `vfwire doctor`: every precondition of the lab setup, each a pass/fail line with the fix.
// Checks only read; none changes the host.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { release as kernelRelease } from 'node:os';
import { oneLine } from '../errors.js';
import { type Config, underlayNetns, vxlanSocketNetns } from '../config/config.js';
import type { Runner } from '../exec/runner.js';
import { readDevlinkState } from '../host/devlink.js';
import { hasEspOffload } from '../host/esp-offload.js';
import { readInventory, type Inventory } from '../host/inventory.js';
import { processStartTimes } from '../host/daemon-start.js';
import { peerNeighbour } from '../host/neighbour.js';
import { hostXfrmForm } from '../ipsec/host-form.js';
import { ifPresent } from '../exec/if-present.js';
import { ip, tc } from '../exec/tools.js';
import { readAdmission } from '../overlay/admission.js';
import { lostSas } from '../ipsec/sa-kernel.js';
import { readLedger } from '../ledger/store.js';
import type { LedgerData } from '../ledger/types.js';
import { holderOf, pfSwitch, readUplinkPorts, strandedOn } from '../failover/pf-switch.js';
import { parseBondingProc, parseBondLink, parseMlx5LagDebugfs, reportLag } from '../failover/lag-status.js';
import { readText } from '../host/sysfs-read.js';
import { checkTcOffload, parseTcFilterShow, type TcFilterStatus } from '../overlay/tc-flower/offload-check.js';
import { tcVniRules } from '../overlay/tc-flower/rules.js';
import { tcVniStateOf } from '../overlay/tc-flower/members.js';

export type Status = 'pass' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  check: string;
  status: Status;
  detail: string;
  fix?: string;
}

export interface DoctorContext {
  cfg: Config;
  runner: Runner;
  /** Paths of the libvirt hook files to look for; defaults to the system's. */
  hookPaths?: string[];
}

const pass = (check: string, detail: string): CheckResult => ({ check, status: 'pass', detail });
const fail = (check: string, detail: string, fix: string): CheckResult => ({ check, status: 'fail', detail, fix });

export async function runChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const { cfg } = ctx;
  const results: CheckResult[] = [];
  let ledger: LedgerData | undefined;
  try {
    ledger = await readLedger(cfg.stateDir);
    results.push(
      pass(
        'ledger',
        `${cfg.stateDir}: ${Object.keys(ledger.leases).length} lease(s), ${Object.keys(ledger.vnis).length} VNI(s)`,
      ),
    );
  } catch (err) {
    results.push(fail('ledger', oneLine(err), 'move the file aside and run vfwire gc'));
  }
  let inv: Inventory | undefined;
  try {
    inv = await readInventory(
      cfg.sysfsRoot,
      cfg.pfs.map((p) => p.name),
    );
  } catch (err) {
    results.push(fail('PFs', oneLine(err), `fix pfs in ${cfg.path}`));
  }
  for (const pf of inv?.values() ?? [])
    results.push(...(await pfChecks(ctx, pf.name, pf.pci, pf.numVfs, pf.vfs.filter((v) => v.rep).length)));
  if (cfg.ipsec.mode !== 'off') results.push(...(await ipsecChecks(ctx, ledger)));
  if (ledger) results.push(await admissionCheck(ctx, ledger));
  if (cfg.overlay === 'tc-flower' && ledger) results.push(await tcOffloadCheck(ctx, ledger));
  if (cfg.overlay === 'tc-flower' && cfg.tcPolicy !== 'skip_hw' && ledger)
    results.push(...(await tcNeighbourChecks(ctx, ledger)));
  if (cfg.failover?.mode === 'active-backup') results.push(await lagCheck(ctx, inv));
  if (pfSwitch(cfg)) results.push(await pfSwitchCheck(ctx));
  if (cfg.backend === 'real') results.push(iommuCheck(), await hookCheck(ctx.hookPaths));
  return results;
}

async function pfChecks(
  ctx: DoctorContext,
  name: string,
  pci: string,
  numVfs: number,
  reps: number,
): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  out.push(
    numVfs > 0
      ? pass(`${name}: SR-IOV`, `${numVfs} VFs enabled`)
      : fail(`${name}: SR-IOV`, 'no VFs enabled (sriov_numvfs is 0)', 'vfwire host setup'),
  );
  try {
    const dl = await readDevlinkState(ctx.runner, pci);
    out.push(
      dl.eswitchMode === 'switchdev'
        ? pass(`${name}: eswitch`, 'switchdev')
        : fail(`${name}: eswitch`, `mode ${dl.eswitchMode}: no representors, no overlay`, 'vfwire host setup'),
    );
    const fsm = dl.flowSteeringMode ?? 'not reported';
    if (dl.flowSteeringMode === 'dmfs') out.push(pass(`${name}: flow steering`, 'dmfs'));
    else
      out.push({
        check: `${name}: flow steering`,
        status: ctx.cfg.ipsec.mode === 'off' ? 'warn' : 'fail',
        detail: `${fsm}; IPsec packet offload needs dmfs`,
        fix: 'vfwire host setup',
      });
  } catch (err) {
    out.push(
      fail(
        `${name}: eswitch`,
        `devlink: ${oneLine(err)}`,
        'install devlink (iproute2) and check the PF is an mlx5 device',
      ),
    );
  }
  out.push(
    numVfs === 0 || reps > 0
      ? pass(`${name}: representors`, `${reps} of ${numVfs} VFs have one`)
      : fail(`${name}: representors`, 'VFs without representors', 'switch the eswitch to switchdev: vfwire host setup'),
  );
  return out;
}

async function ipsecChecks(ctx: DoctorContext, ledger: LedgerData | undefined): Promise<CheckResult[]> {
  const { cfg, runner } = ctx;
  const out: CheckResult[] = [];
  const uplink = cfg.underlay.interface;
  const netns = underlayNetns(cfg);
  try {
    const hw = await hasEspOffload(runner, netns, uplink);
    // NETIF_F_HW_ESP is crypto offload; no feature flag says packet offload: the first
    // `offload packet` state is what proves it (mlx5_ipsec_device_caps, checked at ipsec up).
    if (hw)
      out.push(
        pass(
          `${uplink}: ESP offload`,
          `esp-hw-offload: on (crypto offload${cfg.ipsec.offload === 'packet' ? '; packet offload shows at ipsec up' : ''})`,
        ),
      );
    else
      out.push({
        check: `${uplink}: ESP offload`,
        status: cfg.ipsec.offload === 'none' ? 'warn' : 'fail',
        detail: `esp-hw-offload is not on: the NIC cannot encrypt${cfg.ipsec.offload === 'none' ? ' (ipsec.offload: none: the CPU does)' : ''}`,
        fix: 'a NIC with ESP offload (lab notes, step 1), or ipsec.offload: none',
      });
  } catch (err) {
    out.push(fail(`${uplink}: ESP offload`, `ethtool: ${oneLine(err)}`, 'apt-get install ethtool'));
  }
  // The kernel and iproute2 against ipsec.offload: the same judgement `ipsec up` makes.
  try {
    const form = await hostXfrmForm(cfg, runner);
    out.push(
      pass(
        'xfrm form',
        `offload ${form.offload}; ${form.saDir ? 'SA direction named, output SAs with replay-window 0' : "the lab notes' form (no SA direction, a window on both SAs)"}`,
      ),
    );
  } catch (err) {
    out.push(fail('xfrm form', oneLine(err), 'see the detail'));
  }
  for (const peer of cfg.peers) {
    const up = ledger?.ipsec?.peers[peer.name];
    if (!up) {
      out.push(fail(`IPsec to ${peer.name}`, 'no SAs installed', 'vfwire ipsec up'));
      continue;
    }
    // A read that failed is neither: say so, never "lost".
    const missing = await lostSas(runner, netns, [...up.sas, ...(up.lookahead ?? [])]).catch((err: Error) => err);
    if (missing instanceof Error) {
      out.push(
        fail(`IPsec to ${peer.name}`, `could not read the SAs: ${oneLine(missing)}`, 'see the detail (ip xfrm state)'),
      );
      continue;
    }
    out.push(
      missing.length
        ? fail(
            `IPsec to ${peer.name}`,
            `SA(s) gone from the kernel: ${missing.join(', ')} (an uplink that went down takes offloaded SAs with it)`,
            cfg.ipsec.mode === 'static'
              ? 'vfwire ipsec watch --once (moves the pair to a fresh key epoch; run it as a service to do so by itself)'
              : 'vfwire ipsec watch --once (asks strongSwan for new CHILD_SAs)',
          )
        : pass(`IPsec to ${peer.name}`, `epoch ${up.epoch}, ${up.sas.length + (up.lookahead?.length ?? 0)} SAs`),
    );
  }
  return out;
}

// Every live VNI's underlay admission is in nftables: without it any underlay address could
// send into the VNI (overlay/admission.ts).
async function admissionCheck({ cfg, runner }: DoctorContext, ledger: LedgerData): Promise<CheckResult> {
  const vnis = Object.values(ledger.vnis).map((v) => v.vni);
  const netns = vxlanSocketNetns(cfg);
  let shown;
  try {
    shown = await readAdmission(runner, netns);
  } catch (err) {
    // No nft at all, say: every start needs it.
    return fail(
      'underlay admission',
      `nft: ${oneLine(err)}`,
      "apt-get install nftables (every VM start writes its VNI's admission with it)",
    );
  }
  if (vnis.length === 0) return pass('underlay admission', 'no live VNIs');
  const missing = vnis.filter((v) => !shown.vnis.has(v));
  const wrong = [
    ...(shown.hooked ? [] : ['no input/output hooks']),
    ...(missing.length ? [`VNI(s) ${missing.join(', ')} take VXLAN from any address and send it in clear`] : []),
  ];
  if (wrong.length)
    return fail(
      'underlay admission',
      wrong.join('; '),
      'restart the VMs of those VNIs (their first start writes the chains)',
    );
  return pass(
    'underlay admission',
    vnis.map((v) => `VNI ${v} from ${shown.vnis.get(v)!.join(', ') || 'no peer'}`).join('; '),
  );
}

// Every rule the ledger's tc-flower VNIs imply must be in the kernel and report in_hw: a rule
// that runs in software only means the overlay runs at CPU speed, or not at all (skip_sw).
async function tcOffloadCheck({ cfg, runner }: DoctorContext, ledger: LedgerData): Promise<CheckResult> {
  const expected = Object.values(ledger.vnis).flatMap((v) =>
    v.tc ? tcVniRules(v.tc, tcVniStateOf(ledger, v.vni)) : [],
  );
  if (expected.length === 0) return pass('tc-flower rules', 'no leases on tc-flower VNIs');
  const shown = new Map<string, TcFilterStatus[]>();
  for (const dev of new Set(expected.map((r) => r.dev))) {
    const out = await runner
      .run({ argv: tc(cfg.netns, '-j', '-s', 'filter', 'show', 'dev', dev, 'ingress') })
      .catch(() => undefined);
    shown.set(dev, out ? parseTcFilterShow(out.stdout, dev) : []);
  }
  // skip_hw rules run in the kernel: present is all they can be.
  const bad = checkTcOffload(expected, shown).filter((c) =>
    cfg.tcPolicy === 'skip_hw' ? c.state === 'missing' : c.state !== 'in_hw',
  );
  const where = cfg.tcPolicy === 'skip_hw' ? 'in the kernel (tc_policy skip_hw)' : 'in_hw';
  if (!bad.length) return pass('tc-flower rules', `${expected.length} rules ${where}`);
  const detail = `${bad.length} of ${expected.length} ${cfg.tcPolicy === 'skip_hw' ? 'missing' : 'not in hardware'}: ${bad
    .slice(0, 3)
    .map((b) => b.detail)
    .join('; ')}`;
  // With tc_policy none the kernel runs what the NIC did not take: slower, not broken.
  if (cfg.tcPolicy === 'none' && bad.every((b) => b.state === 'not_in_hw'))
    return {
      check: 'tc-flower rules',
      status: 'warn',
      detail,
      fix: 'see the detail (the kernel runs these rules meanwhile)',
    };
  return fail('tc-flower rules', detail, 'see the detail; vfwire gc, or restart the VMs');
}

// in_hw is not enough for an encap rule: the NIC uses it only with a resolved neighbour towards
// the peer (host/neighbour.ts); until then a skip_sw rule's traffic goes nowhere.
async function tcNeighbourChecks({ cfg, runner }: DoctorContext, ledger: LedgerData): Promise<CheckResult[]> {
  const peers = [...new Set(Object.values(ledger.vnis).flatMap((v) => (v.tc && v.members.length ? v.peers : [])))];
  return Promise.all(
    peers.map(async (peer) => {
      const check = `neighbour of ${peer}`;
      try {
        const n = await peerNeighbour(runner, cfg.netns, peer);
        const at = `${n.via === peer ? '' : `via ${n.via} `}on ${n.dev}`;
        if (n.valid) return pass(check, `${at}: ${n.states.join(' ')}`);
        return fail(
          check,
          `${at}: ${n.states.join(' ') || 'no entry'}; the NIC keeps encap rules to it in its slow path until it resolves, though tc says in_hw`,
          `ping -c 1 ${n.via} from this host (or check the underlay's link and ARP)`,
        );
      } catch (err) {
        return fail(check, oneLine(err), 'check the underlay route to the peer');
      }
    }),
  );
}

async function lagCheck({ cfg, runner }: DoctorContext, inv: Inventory | undefined): Promise<CheckResult> {
  const bondName = cfg.underlay.interface;
  const netns = underlayNetns(cfg);
  let out;
  try {
    out = await ifPresent(runner.run({ argv: ip(netns, '-j', '-d', 'link', 'show', 'dev', bondName) }));
  } catch (err) {
    return fail('VF LAG', `could not read ${bondName}: ${oneLine(err)}`, 'see the detail');
  }
  if (!out) return fail('VF LAG', `no bond ${bondName}`, 'vfwire host setup');
  const pf0 = inv?.get(cfg.pfs[0]!.name)?.pci;
  const debugfs = pf0 ? `/sys/kernel/debug/mlx5/${pf0}/lag` : undefined;
  // type and flags are unreadable (EINVAL) while the LAG is inactive.
  const lagFile = (name: string) => (debugfs ? readText(join(debugfs, name)) : Promise.resolve(undefined));
  const [state, type, flags] = await Promise.all(['state', 'type', 'flags'].map(lagFile));
  const mlx5 = state !== undefined ? parseMlx5LagDebugfs({ state, type, flags }) : undefined;
  // The bond's ports and their MII come from /proc/net/bonding, which shows this netns's bonds.
  const proc = netns === undefined ? await readText(`/proc/net/bonding/${bondName}`) : undefined;
  let bond;
  try {
    bond = proc !== undefined ? parseBondingProc(proc, bondName) : parseBondLink(out.stdout, bondName);
  } catch (err) {
    return fail('VF LAG', oneLine(err), 'vfwire host setup (with failover, underlay.interface names the bond)');
  }
  const report = reportLag(
    bondName,
    bond,
    cfg.pfs.map((p) => p.name),
    mlx5,
  );
  return report.ok
    ? pass('VF LAG', report.lines.join('; '))
    : fail('VF LAG', report.lines.join('; '), 'vfwire host setup (see the detail)');
}

/** pf-switch: the underlay on exactly one PF with a link, the other ready, every pair's SAs on the holder. */
async function pfSwitchCheck({ cfg, runner }: DoctorContext): Promise<CheckResult> {
  const name = 'failover (pf-switch)';
  let ports;
  try {
    ports = await readUplinkPorts(cfg, runner);
  } catch (err) {
    return fail(name, `could not read the PFs: ${oneLine(err)}`, 'vfwire host setup');
  }
  let active;
  try {
    active = holderOf(cfg, ports);
  } catch (err) {
    return fail(name, oneLine(err), 'vfwire host setup');
  }
  const standby = ports.find((p) => p !== active)!;
  if (!active.carrier)
    return fail(
      name,
      `the underlay is on ${active.name}, which has no link${standby.carrier ? `; ${standby.name} has one` : ', nor has ' + standby.name}`,
      'run vfwire ipsec watch (it moves the underlay to the PF with a link)',
    );
  const ledger = await readLedger(cfg.stateDir);
  const stranded = Object.entries(ledger.ipsec?.peers ?? {}).flatMap(([peer, p]) => {
    const on = strandedOn(cfg, p, active.name);
    return on ? [{ peer, on }] : [];
  });
  if (stranded.length)
    return fail(
      name,
      `the SAs to ${stranded.map((s) => s.peer).join(', ')} are offloaded to ${stranded[0]!.on}, the underlay is on ${active.name}`,
      'run vfwire ipsec watch (it moves them to fresh SAs on the new port)',
    );
  if (!standby.carrier)
    return {
      check: name,
      status: 'warn',
      detail: `the underlay is on ${active.name}; the standby ${standby.name} has no link, so no failover until it has`,
      fix: `check the cable and the switch port of ${standby.name}`,
    };
  return pass(name, `the underlay is on ${active.name}, ${standby.name} stands by with a link`);
}

function iommuCheck(): CheckResult {
  const groups = existsSync('/sys/kernel/iommu_groups') ? readdirSync('/sys/kernel/iommu_groups').length : 0;
  const vfio =
    existsSync('/sys/bus/pci/drivers/vfio-pci') ||
    existsSync(`/lib/modules/${kernelRelease()}/kernel/drivers/vfio/pci`);
  if (groups > 0 && vfio) return pass('IOMMU / vfio-pci', `${groups} IOMMU groups, vfio-pci available`);
  return fail(
    'IOMMU / vfio-pci',
    `${groups} IOMMU groups, vfio-pci ${vfio ? 'available' : 'missing'}`,
    'enable VT-d/AMD-Vi in firmware, boot with intel_iommu=on or amd_iommu=on iommu=pt, modprobe vfio-pci',
  );
}

async function hookCheck(
  paths = ['/etc/libvirt/hooks/qemu.d/vfwire', '/etc/libvirt/hooks/qemu'],
): Promise<CheckResult> {
  const found = paths.find((p) => existsSync(p));
  if (!found) return fail('libvirt hook', 'not installed', './install.sh, then restart libvirtd');
  // libvirt discovers hooks when the daemon starts: a newer hook file is not loaded yet.
  const daemons = await processStartTimes(['libvirtd', 'virtqemud']);
  if (daemons.length === 0)
    return {
      check: 'libvirt hook',
      status: 'warn',
      detail: `${found}; no libvirtd or virtqemud running`,
      fix: 'start libvirtd',
    };
  const hookMs = statSync(found).mtimeMs;
  const stale = daemons.filter((d) => d.startedMs < hookMs);
  return stale.length
    ? fail(
        'libvirt hook',
        `${found} is newer than the running ${stale.map((d) => d.name).join(', ')}: installed, not loaded`,
        `restart ${stale[0]!.name} (libvirt reads hooks only when it starts)`,
      )
    : pass('libvirt hook', `${found}, loaded by ${daemons.map((d) => d.name).join(', ')}`);
}
