// doctor's lines for failover: the VF LAG bond and mlx5's LAG state (active-backup), or the
// underlay and every pair's SAs on the one PF with a link (pf-switch).

import { join } from 'node:path';
import { fail, pass, warn, type CheckResult } from '../check-result.js';
import { type Config, underlayNetns } from '../config/config.js';
import { oneLine } from '../errors.js';
import { ifPresent } from '../exec/if-present.js';
import type { Runner } from '../exec/runner.js';
import { ip } from '../exec/tools.js';
import type { Inventory } from '../host/inventory.js';
import { readText } from '../host/sysfs-read.js';
import { readLedger } from '../ledger/store.js';
import { parseBondingProc, parseBondLink, parseMlx5LagDebugfs, reportLag } from './lag-status.js';
import { holderOf, readUplinkPorts, strandedOn } from './pf-switch.js';

export async function lagCheck(cfg: Config, runner: Runner, inv: Inventory | undefined): Promise<CheckResult> {
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
export async function pfSwitchCheck(cfg: Config, runner: Runner): Promise<CheckResult> {
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
    return warn(
      name,
      `the underlay is on ${active.name}; the standby ${standby.name} has no link, so no failover until it has`,
      `check the cable and the switch port of ${standby.name}`,
    );
  return pass(name, `the underlay is on ${active.name}, ${standby.name} stands by with a link`);
}

/** pf-switch announces each move with arping (pf-switch.ts); without it peers follow seconds late. */
export async function garpToolCheck(runner: Runner): Promise<CheckResult> {
  const name = 'failover (pf-switch): gratuitous ARP';
  try {
    const { stdout } = await runner.run({ argv: ['arping', '-V'] });
    return pass(name, stdout.split('\n')[0]!.trim());
  } catch (err) {
    return fail(
      name,
      `no arping: after a move peers keep sending to the old port's MAC for about 5 s (${oneLine(err)})`,
      'apt install iputils-arping',
    );
  }
}
