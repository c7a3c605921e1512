// failover: pf-switch, the failover that carries packet-offloaded IPsec. No bond can: bonding
// offloads no xfrm policy (drivers/net/bonding/bond_main.c bond_xfrmdev_ops has no
// xdo_dev_policy_add, so net/xfrm/xfrm_device.c xfrm_dev_policy_add fails "Policy offload is not
// supported"), a packet-offload SA must sit on its policy's netdev (net/xfrm/xfrm_state.c
// xfrm_state_find: pol->xdo.dev == x->xso.dev), and mlx5 has no packet offload with LAG in
// switchdev (bdf788cf224f). So the underlay address lives on one PF, the SAs and policies are
// offloaded to that PF, and when its link goes down `ipsec watch` moves the address to the other
// PF and the pairs to new epochs offloaded there: fresh keys, so no (key, nonce) is used twice.
//
// A lost carrier flushes nothing (xfrm_device.c xfrm_dev_event acts on NETDEV_DOWN and
// NETDEV_UNREGISTER only): the old port's SAs stay until the move deletes them. No preemption: a
// port that comes back stays the standby.
//
// Peers must learn the address's new MAC, and adding an address announces nothing (IPv4 has no
// DAD). Waiting for this host's next ARP to a peer is not enough: the new port usually has a
// STALE entry for each peer already (it answered their broadcast requests, arp_ignore=0 answers
// for any local address), so the kernel sends no request but a unicast probe after
// delay_first_probe_time, 5 s (net/core/neighbour.c neigh_timer_handler), while the peer sends to
// the old MAC; seen in the kernel lab on 6.12. So the move ends with one gratuitous ARP from the
// new port, which overrides the peer's entry whatever its locktime (net/ipv4/arp.c arp_process:
// is_garp), as bonding does on a new active port (drivers/net/bonding/bond_main.c
// bond_change_active_slave -> NETDEV_NOTIFY_PEERS -> net/ipv4/devinet.c inetdev_send_gratuitous_arp).

import type { Config } from '../config/config.js';
import { underlayNetns } from '../config/config.js';
import { ResourceError } from '../errors.js';
import type { Runner } from '../exec/runner.js';
import { arping, ip } from '../exec/tools.js';
import { parseJsonOutput } from '../json-output.js';
import type { Command } from '../exec/step.js';
import type { PeerSaState } from '../ledger/types.js';

export interface UplinkPort {
  name: string;
  /** Admin up and carrier: LOWER_UP. */
  carrier: boolean;
  /** Holds the underlay address now. */
  holds: boolean;
}

interface IpAddr {
  ifname: string;
  flags?: string[];
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

export const pfSwitch = (cfg: Config): boolean => cfg.failover?.mode === 'pf-switch';

/** Both PFs' carrier and which holds the underlay address, read from the kernel. */
export async function readUplinkPorts(cfg: Config, runner: Runner): Promise<UplinkPort[]> {
  const ports: UplinkPort[] = [];
  for (const pf of cfg.pfs) {
    const out = (await runner.run({ argv: ip(underlayNetns(cfg), '-j', 'addr', 'show', 'dev', pf.name) })).stdout;
    const link = (parseJsonOutput(out, `ip addr show dev ${pf.name}`) as IpAddr[])[0];
    const flags = link?.flags ?? [];
    const holds = (link?.addr_info ?? []).some((a) => a.family === 'inet' && a.local === cfg.underlay.address);
    ports.push({ name: pf.name, carrier: flags.includes('UP') && flags.includes('LOWER_UP'), holds });
  }
  return ports;
}

/**
 * The netdev the underlay (and so every offloaded SA) is on: underlay.interface, or with
 * pf-switch the PF that holds the address now.
 */
export async function activeUplink(cfg: Config, runner: Runner): Promise<string> {
  return pfSwitch(cfg) ? holderOf(cfg, await readUplinkPorts(cfg, runner)).name : cfg.underlay.interface;
}

/** The one port holding the underlay address; refused when none or both do. */
export function holderOf(cfg: Config, ports: UplinkPort[]): UplinkPort {
  const holders = ports.filter((p) => p.holds);
  if (holders.length !== 1) {
    throw new ResourceError(
      `failover pf-switch: the underlay address ${cfg.underlay.address} is on ${holders.length ? holders.map((h) => h.name).join(' and ') : 'neither PF'}: run vfwire host setup`,
    );
  }
  return holders[0]!;
}

/**
 * The port a pair's SAs are offloaded to when it is not `uplink`, the underlay's now: they are
 * stranded there. CPU SAs (offload none) belong to no netdev and never are.
 */
export function strandedOn(cfg: Config, pair: PeerSaState, uplink: string): string | undefined {
  const on = pair.uplink ?? cfg.underlay.interface;
  return cfg.ipsec.offload !== 'none' && on !== uplink ? on : undefined;
}

export interface UplinkMove {
  from: string;
  to: string;
  /** The address onto the new port first, then off the old one: the host never lacks it. */
  commands: Command[];
  /**
   * The gratuitous ARP from the new port, once its SAs are there: at once for CPU SAs, after the
   * round re-homed offloaded ones. arping lingers a second after its one request; the peers have
   * it at once.
   */
  announce: Command;
}

/** The move the ports call for: the holder lost its carrier and the other has one. */
export function planUplinkMove(cfg: Config, ports: UplinkPort[]): UplinkMove | undefined {
  const from = ports.find((p) => p.holds);
  const to = ports.find((p) => !p.holds && p.carrier);
  if (!from || from.carrier || !to) return undefined;
  const cidr = `${cfg.underlay.address}/${cfg.underlay.prefixLen}`;
  const ns = underlayNetns(cfg);
  return {
    from: from.name,
    to: to.name,
    commands: [
      { argv: ip(ns, 'addr', 'add', cidr, 'dev', to.name) },
      { argv: ip(ns, 'addr', 'del', cidr, 'dev', from.name) },
    ],
    // -U: an unsolicited request, sender and target the address (iputils arping.c).
    announce: { argv: arping(ns, '-q', '-U', '-c', '1', '-I', to.name, cfg.underlay.address) },
  };
}
