// What host setup may not do while IPsec offload is active.

import { ResourceError } from '../errors.js';
import type { HostState, PfSetup } from '../host/host-state.js';
import type { HostSetupInput } from './host-setup-input.js';

export interface PlannedChanges {
  needFsm: (pf: PfSetup) => boolean;
  needMode: (pf: PfSetup) => boolean;
  needEnslave: (pf: PfSetup) => boolean;
}

// mlx5 refuses an eswitch mode change while IPsec rules exist, a steering mode change tears
// down the tables the offloaded SAs live in, and a PF that goes down (to be enslaved) loses its
// offloaded SAs: with IPsec up, none of these may be planned.
export function refuseWhileIpsec(input: HostSetupInput, current: HostState, need: PlannedChanges): void {
  if (!current.ipsecActive) return;
  const why: string[] = [];
  for (const pf of input.pfs) {
    const was = current.pfs[pf.name];
    if (need.needMode(pf)) why.push(`${pf.name}: eswitch mode ${was?.eswitchMode ?? 'unknown'} -> switchdev`);
    if (need.needFsm(pf))
      why.push(
        `${pf.name}: flow steering ${was?.flowSteeringMode ?? 'unknown'} -> ${input.flowSteeringMode ?? 'dmfs'}`,
      );
    if (need.needEnslave(pf)) why.push(`${pf.name}: down and into ${input.underlay.interface}`);
  }
  if (why.length) {
    throw new ResourceError(
      `host setup: IPsec offload is active, and ${why.join('; ')} would remove the NIC's IPsec state (mlx5 refuses an eswitch mode change while IPsec rules exist; a PF that goes down loses its offloaded SAs): run vfwire ipsec down, then host setup, then vfwire ipsec up`,
    );
  }
}
