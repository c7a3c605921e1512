// mlx5 VF LAG over the NIC's two ports (`failover: active-backup`): the bond host setup builds,
// in the documented order. Both PFs go to switchdev first (plan/host-setup.ts), then:
//   4. ip link add bond0 type bond mode active-backup miimon 100
//   5. per PF: the underlay address off it (if a non-failover run left one), `down` (a port is
//      enslaved down; bonding opens it itself), `master bond0`;
//   6. the underlay address on the bond, `mtu 9216 up` on the bond (bonding passes the MTU to
//      its slaves);
//   7. the VFs last (plan/host-setup.ts), since mlx5 (de)activates a VF LAG only with no VFs
//      bound ("Make sure all VFs are unbound prior to VF LAG activation or deactivation",
//      lag/lag.c).
// Switchdev before bonding: mlx5 forms a LAG only when both PFs are in the same eswitch mode and
// none has VFs in legacy mode (mlx5_lag_check_prereq, lag/lag.c); NVIDIA's VF-LAG quick start
// guide ("To enable VF-LAG, the NIC should be in SRIOV switchdev mode") and its TripleO notes (a
// `linux_bond` of two `sriov_pf` members with `link_mode: switchdev`, bonding_options
// "mode=active-backup miimon=100") build the bond over PFs already in switchdev.
// active-backup only: it is the one bonding mode in which the kernel moves xfrm offload between
// slaves (bond_ipsec_* in bond_main.c).

import { ValidationError } from '../errors.js';
import { ip } from '../exec/tools.js';
import type { Step } from '../exec/step.js';
import type { BondState, HostState, PfSetup } from '../host/host-state.js';
import { addrStep, DEFAULT_LINK, HOST_OWNER, linkStep, mtuUpStep } from '../host/link-steps.js';

export interface LagWant {
  netns?: string;
  /** The bond's name (the config's underlay interface). */
  bond: string;
  miimon: number;
  /** The underlay address, a.b.c.d/len. */
  cidr: string;
  mtu: number;
}

/** A PF that is not yet the bond's port: enslaving it (re)forms the LAG. */
export function needsEnslave(want: LagWant, current: HostState, pf: PfSetup): boolean {
  return current.pfs[pf.name]?.master !== want.bond;
}

/** Steps 4-6: the bond, its ports, the underlay on it. */
export function lagSteps(want: LagWant, current: HostState, pfs: PfSetup[]): Step[] {
  const ns = want.netns;
  const steps = bondSteps(ns, want.bond, want.miimon, current.bond);
  for (const pf of pfs) {
    if (!needsEnslave(want, current, pf)) continue;
    const c = current.pfs[pf.name] ?? {};
    if (c.addresses?.includes(want.cidr))
      steps.push({ ...addrStep(ns, pf.name, want.cidr, 'del'), kind: 'uplink-addr-move' });
    if (c.up !== false) steps.push(linkStep(ns, 'pf-down', pf.name, ['down'], c.up === true ? ['up'] : undefined));
    steps.push(
      linkStep(ns, 'bond-enslave', pf.name, ['master', want.bond], c.master ? ['master', c.master] : ['nomaster']),
    );
  }
  if (!current.bond || !current.bond.addresses.includes(want.cidr)) steps.push(addrStep(ns, want.bond, want.cidr));
  steps.push(...mtuUpStep(ns, want.bond, want.mtu, current.bond ?? DEFAULT_LINK));
  return steps;
}

function bondSteps(ns: string | undefined, bond: string, miimon: number, cur: BondState | null | undefined): Step[] {
  if (!cur) {
    return [
      {
        kind: 'bond-create',
        device: bond,
        owner: HOST_OWNER,
        do: { argv: ip(ns, 'link', 'add', bond, 'type', 'bond', 'mode', 'active-backup', 'miimon', String(miimon)) },
        undo: { argv: ip(ns, 'link', 'del', bond) },
      },
    ];
  }
  if (cur.mode !== 'active-backup') {
    throw new ValidationError(
      `host setup: ${bond} exists in mode ${cur.mode}; failover needs active-backup, and vfwire does not rebuild a bond it did not make: remove it (ip link del ${bond}) and run host setup again`,
    );
  }
  if (cur.miimon === miimon) return [];
  const set = (m: number) => ({ argv: ip(ns, 'link', 'set', 'dev', bond, 'type', 'bond', 'miimon', String(m)) });
  return [{ kind: 'bond-miimon', device: bond, owner: HOST_OWNER, do: set(miimon), undo: set(cur.miimon) }];
}
