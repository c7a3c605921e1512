// What `vfwire doctor` says about failover: the bond (mode, active port, each port's MII) from
// /proc/net/bonding/<bond> or `ip -j -d link show <bond>`, and whether mlx5 really formed the
// VF LAG (debugfs lag/state). Pure parsers plus one report; reading the files is the caller's.
//
// Formats, from the sources that print them:
// - /proc/net/bonding/<bond>: drivers/net/bonding/bond_procfs.c, "Bonding Mode: fault-tolerance
//   (active-backup)", "Currently Active Slave: X", "MII Status: up", "MII Polling Interval (ms):
//   100", then per port "Slave Interface: X", "MII Status", "Speed: N Mbps", "Link Failure
//   Count: N", "Permanent HW addr: ..." (blank-line separated);
// - `ip -j -d link show <bond>`: iproute2 ip/iplink_bond.c, linkinfo.info_kind "bond" and
//   info_data.mode / active_slave / miimon;
// - /sys/kernel/debug/mlx5/<pci>/lag/{state,type,flags}: mlx5 lag/debugfs.c (Linux >= 5.19),
//   state "active" | "disabled", type "switchdev" for a VF LAG, flags "shared_fdb:on".

import { ValidationError } from '../errors.js';
import { parseJsonOutput } from '../json-output.js';

export interface BondPort {
  name: string;
  mii: string;
  speedMbps?: number;
  linkFailures?: number;
  permanentAddress?: string;
}

export interface BondStatus {
  /** iproute2's mode name: active-backup, 802.3ad, balance-rr, ... */
  mode: string;
  activePort?: string;
  primaryPort?: string;
  mii?: string;
  miimonMs?: number;
  ports: BondPort[];
  /** From `ip link` only: the bond is administratively up. */
  up?: boolean;
}

// bond_mode_name() (bonding) -> iproute2's names (ip/iplink_bond.c mode_tbl).
const PROC_MODES: Record<string, string> = {
  'load balancing (round-robin)': 'balance-rr',
  'fault-tolerance (active-backup)': 'active-backup',
  'load balancing (xor)': 'balance-xor',
  'fault-tolerance (broadcast)': 'broadcast',
  'IEEE 802.3ad Dynamic link aggregation': '802.3ad',
  'transmit load balancing': 'balance-tlb',
  'adaptive load balancing': 'balance-alb',
};

/** Parses /proc/net/bonding/<bond>. */
export function parseBondingProc(text: string, bond = 'bond'): BondStatus {
  const [head = '', ...portBlocks] = text.split(/\n(?=Slave Interface: )/);
  const field = (block: string, name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(block)?.[1]?.trim();
  const modeText = field(head, 'Bonding Mode');
  if (modeText === undefined) throw new ValidationError(`/proc/net/bonding/${bond}: no "Bonding Mode" line`);
  // "fault-tolerance (active-backup) (fail_over_mac active)": the mode is the known prefix.
  const mode = Object.entries(PROC_MODES).find(([k]) => modeText.startsWith(k))?.[1] ?? modeText;
  const none = (v: string | undefined) => (v === undefined || v === 'None' ? undefined : v);
  const num = (v: string | undefined) => (v === undefined || !/^\d+/.test(v) ? undefined : parseInt(v, 10));
  return {
    mode,
    activePort: none(field(head, 'Currently Active Slave')),
    primaryPort: none(field(head, 'Primary Slave')?.replace(/ \(primary_reselect .*\)$/, '')),
    mii: field(head, 'MII Status'),
    miimonMs: num(field(head, 'MII Polling Interval \\(ms\\)')),
    ports: portBlocks.map((b) => ({
      name: field(b, 'Slave Interface')!,
      mii: field(b, 'MII Status') ?? 'unknown',
      speedMbps: num(field(b, 'Speed')),
      linkFailures: num(field(b, 'Link Failure Count')),
      permanentAddress: field(b, 'Permanent HW addr'),
    })),
  };
}

/** Parses `ip -j -d link show <bond>`; ports come from /proc (or `ip -j link show master <bond>`). */
export function parseBondLink(json: string, bond = 'bond'): BondStatus {
  const doc = parseJsonOutput(json, `ip link show ${bond}`);
  const link = (Array.isArray(doc) ? doc[0] : undefined) as
    | {
        flags?: string[];
        operstate?: string;
        linkinfo?: {
          info_kind?: string;
          info_data?: { mode?: string; active_slave?: string; miimon?: number; primary?: string };
        };
      }
    | undefined;
  if (!link) throw new ValidationError(`ip link show ${bond}: no such link in the output`);
  if (link.linkinfo?.info_kind !== 'bond')
    throw new ValidationError(
      `ip link show ${bond}: not a bond (${link.linkinfo?.info_kind ?? 'no linkinfo; was -d given?'})`,
    );
  const d = link.linkinfo.info_data ?? {};
  return {
    mode: d.mode ?? 'unknown',
    activePort: d.active_slave,
    primaryPort: d.primary,
    mii: link.operstate === 'UP' ? 'up' : link.operstate?.toLowerCase(),
    miimonMs: d.miimon,
    ports: [],
    up: link.flags?.includes('UP') ?? false,
  };
}

export interface Mlx5LagState {
  active: boolean;
  /** switchdev (a VF LAG), roce, multipath, multiport_eswitch. */
  type?: string;
  sharedFdb?: boolean;
}

/** The contents of debugfs mlx5/<pci>/lag/{state,type,flags}; type and flags are unreadable (EINVAL) while inactive. */
export function parseMlx5LagDebugfs(files: { state: string; type?: string; flags?: string }): Mlx5LagState {
  const state = files.state.trim();
  if (state !== 'active' && state !== 'disabled')
    throw new ValidationError(`mlx5 lag/state: unexpected ${JSON.stringify(state)}`);
  const flag = /^shared_fdb:(on|off)$/m.exec(files.flags ?? '')?.[1];
  return {
    active: state === 'active',
    type: files.type?.trim() || undefined,
    sharedFdb: flag === undefined ? undefined : flag === 'on',
  };
}

export interface LagReport {
  ok: boolean;
  activePort?: string;
  /** One line each, for doctor: what holds, what does not and the fix. */
  lines: string[];
}

/** Failover as doctor reports it: the bond's mode and ports, the active one, and mlx5's LAG. */
export function reportLag(bondName: string, bond: BondStatus, expectedPorts: string[], mlx5?: Mlx5LagState): LagReport {
  const lines: string[] = [];
  let ok = true;
  const problem = (line: string) => {
    ok = false;
    lines.push(line);
  };
  if (bond.mode === 'active-backup')
    lines.push(
      `${bondName}: active-backup${bond.miimonMs === undefined ? '' : `, miimon ${bond.miimonMs} ms`}${bond.mii ? `, MII ${bond.mii}` : ''}`,
    );
  else
    problem(
      `${bondName}: mode ${bond.mode}, failover needs active-backup (the one mode in which the kernel moves xfrm offload between ports); fix: ip link del ${bondName}, then vfwire host setup`,
    );
  if (bond.miimonMs === 0) problem(`${bondName}: miimon 0, link failures go unnoticed; fix: vfwire host setup`);

  if (bond.ports.length > 0) {
    const names = bond.ports.map((p) => p.name);
    const missing = expectedPorts.filter((p) => !names.includes(p));
    const extra = names.filter((p) => !expectedPorts.includes(p));
    if (missing.length) problem(`${bondName}: ${missing.join(', ')} not in the bond; fix: vfwire host setup`);
    if (extra.length) problem(`${bondName}: ${extra.join(', ')} in the bond, not a configured PF`);
  }
  if (!bond.activePort) {
    problem(`${bondName}: no active port: the underlay is down`);
  } else {
    const active = bond.ports.find((p) => p.name === bond.activePort);
    lines.push(
      `active port: ${bond.activePort}${active ? ` (MII ${active.mii}${active.speedMbps ? `, ${active.speedMbps / 1000} Gb/s` : ''})` : ''}`,
    );
    for (const p of bond.ports.filter((x) => x.name !== bond.activePort)) {
      if (p.mii === 'up')
        lines.push(
          `backup port: ${p.name} (MII up${p.linkFailures ? `, ${p.linkFailures} link failure(s) so far` : ''})`,
        );
      else
        problem(
          `backup port: ${p.name} MII ${p.mii}: no failover until its link is back (check the cable and the upstream switch)`,
        );
    }
  }
  if (mlx5) {
    if (!mlx5.active)
      problem(
        'mlx5 VF LAG: disabled, VFs do not fail over; both PFs must be in switchdev mode with their VFs created after the bond: vfwire host setup',
      );
    else if (mlx5.type && mlx5.type !== 'switchdev')
      problem(`mlx5 LAG: active as ${mlx5.type}, not a VF LAG (switchdev); fix: vfwire host setup`);
    else
      lines.push(
        `mlx5 VF LAG: active${mlx5.type ? ` (${mlx5.type}${mlx5.sharedFdb === undefined ? '' : `, shared FDB ${mlx5.sharedFdb ? 'on' : 'off'}`})` : ''}`,
      );
  }
  return { ok, activePort: bond.activePort, lines };
}
