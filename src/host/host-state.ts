// What `host setup` needs to know before it changes anything: per PF its VF count, eswitch and
// flow steering modes, addresses, MTU, link state and master; its representors; the bond.

import { join } from 'node:path';
import type { Config } from '../config/config.js';
import type { Runner } from '../exec/runner.js';
import { ifPresent } from '../exec/if-present.js';
import { ip } from '../exec/tools.js';
import { parseJsonOutput } from '../json-output.js';
import { readDevlinkState, type EswitchMode } from './devlink.js';
import type { LinkState } from './link-steps.js';
import { readInt } from './sysfs-read.js';

/** A PF as host setup wants it. */
export interface PfSetup {
  name: string;
  /** PCI address of the PF, as devlink names it (pci/<this>). */
  pci: string;
  /** VFs wanted on this PF (0 leaves SR-IOV off). */
  numVfs: number;
  /** Representor names of VFs 0..numVfs-1, as the driver will name them (enp3s0f0r0, ...); [] to leave them alone. */
  reps: string[];
}

/** What host setup read. An absent field was not read and counts as "differs". */
export interface PfState {
  numVfs?: number;
  /** sriov_drivers_autoprobe: 1 binds a host driver to every new VF. */
  driversAutoprobe?: number;
  eswitchMode?: EswitchMode;
  flowSteeringMode?: string;
  /** CIDRs, e.g. 192.168.80.2/24. */
  addresses?: string[];
  mtu?: number;
  up?: boolean;
  /** The master (bond) it is enslaved to; null: none. */
  master?: string | null;
}

export interface BondState {
  mode: string;
  miimon: number;
  addresses: string[];
  mtu: number;
  up: boolean;
}

export interface HostState {
  pfs: Record<string, PfState>;
  reps: Record<string, LinkState>;
  /** The failover bond as it exists; undefined or null: none. */
  bond?: BondState | null;
  /** IPsec SAs/policies are offloaded now (vfwire ipsec up): mode changes would break them. */
  ipsecActive?: boolean;
}

interface IpLink {
  ifname: string;
  mtu: number;
  flags: string[];
  master?: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
  linkinfo?: { info_kind?: string; info_data?: { mode?: string; miimon?: number } };
}

/**
 * The PFs as host setup wants them: VF count from the config or the firmware's maximum. No
 * representors: those are found once the VFs exist (ops/host-setup.ts), never guessed from a name.
 */
export async function wantedPfs(cfg: Config, pciOf: (pf: string) => Promise<string>): Promise<PfSetup[]> {
  const out: PfSetup[] = [];
  for (const pf of cfg.pfs) {
    const numVfs =
      pf.numVfs ?? (await readInt(join(cfg.sysfsRoot, 'class/net', pf.name, 'device/sriov_totalvfs'))) ?? 0;
    out.push({ name: pf.name, pci: await pciOf(pf.name), numVfs, reps: [] });
  }
  return out;
}

export async function readHostState(
  cfg: Config,
  runner: Runner,
  pfs: PfSetup[],
  netns: string | undefined,
): Promise<HostState> {
  const state: HostState = { pfs: {}, reps: {} };
  for (const pf of pfs) {
    const link = await showLink(runner, netns, pf.name);
    const dl = await readDevlinkState(runner, pf.pci);
    const pfState: PfState = {
      numVfs: await readInt(join(cfg.sysfsRoot, 'class/net', pf.name, 'device/sriov_numvfs')),
      driversAutoprobe: await readInt(join(cfg.sysfsRoot, 'class/net', pf.name, 'device/sriov_drivers_autoprobe')),
      eswitchMode: dl?.eswitchMode,
      flowSteeringMode: dl?.flowSteeringMode,
      ...(link ? linkFacts(link) : {}),
    };
    state.pfs[pf.name] = pfState;
    for (const rep of pf.reps) {
      const r = await showLink(runner, netns, rep);
      if (r) state.reps[rep] = { mtu: r.mtu, up: r.flags.includes('UP') } satisfies LinkState;
    }
  }
  if (cfg.failover?.mode === 'active-backup') {
    const bond = await showLink(runner, netns, cfg.underlay.interface);
    state.bond = bond?.linkinfo?.info_kind === 'bond' ? bondFacts(bond) : null;
  }
  return state;
}

function linkFacts(l: IpLink): Pick<PfState, 'addresses' | 'mtu' | 'up' | 'master'> {
  return { addresses: inet(l), mtu: l.mtu, up: l.flags.includes('UP'), master: l.master ?? null };
}

function bondFacts(l: IpLink): BondState {
  return {
    mode: l.linkinfo?.info_data?.mode ?? 'unknown',
    miimon: l.linkinfo?.info_data?.miimon ?? 0,
    addresses: inet(l),
    mtu: l.mtu,
    up: l.flags.includes('UP'),
  };
}

function inet(l: IpLink): string[] {
  return (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
}

async function showLink(runner: Runner, netns: string | undefined, dev: string): Promise<IpLink | undefined> {
  const r = await ifPresent(runner.run({ argv: ip(netns, '-j', '-d', 'addr', 'show', 'dev', dev) }));
  return r ? (parseJsonOutput(r.stdout, `ip addr show dev ${dev}`) as IpLink[])[0] : undefined;
}
