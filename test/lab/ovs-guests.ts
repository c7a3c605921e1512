// Netns "guests" on a lab Open vSwitch bridge: a veth whose switch side is an OVS port, and
// what the OVS suites ask of them (a ping, the frames received).

import { execa } from 'execa';
import { runner } from '../helpers/sim.js';
import type { Ovs } from './ovs-daemons.js';

export interface OvsGuest {
  ns: string;
  /** The switch side's name, an OVS port. */
  port: string;
  mac: string;
  ip: string;
}

/** The guest's netns with eth0 (MAC, IP/24, MTU), its peer a port of `bridge` in `hostNs` (the root one if none). */
export async function addGuest(ovs: Ovs, bridge: string, g: OvsGuest, hostNs?: string, mtu = 1500): Promise<void> {
  const inHost = (argv: string[]) => (hostNs ? ['ip', 'netns', 'exec', hostNs, ...argv] : argv);
  await runner.run({ argv: ['ip', 'netns', 'add', g.ns] });
  await runner.run({
    argv: inHost(['ip', 'link', 'add', g.port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', g.ns]),
  });
  await runner.run({
    argv: ['ip', '-n', g.ns, 'link', 'set', 'dev', 'eth0', 'address', g.mac, 'mtu', String(mtu), 'up'],
  });
  await runner.run({ argv: ['ip', '-n', g.ns, 'addr', 'add', `${g.ip}/24`, 'dev', 'eth0'] });
  // The switch side has no IPv6 of its own: its router solicitations would reach the guest
  // past the bridge and count as received.
  await runner.run({ argv: inHost(['sysctl', '-q', '-w', `net.ipv6.conf.${g.port}.disable_ipv6=1`]) });
  await runner.run({ argv: inHost(['ip', 'link', 'set', 'dev', g.port, 'up']) });
  await ovs.run('ovs-vsctl', ['add-port', bridge, g.port]);
}

export const pingFrom = (g: OvsGuest, to: string) =>
  execa('ip', ['netns', 'exec', g.ns, 'ping', '-c', '2', '-i', '0.3', '-W', '3', to], { reject: false });

/** Frames the guest's eth0 has received. */
export async function rxPackets(g: OvsGuest): Promise<number> {
  const { stdout } = await execa('ip', ['-n', g.ns, '-j', '-s', 'link', 'show', 'dev', 'eth0']);
  return (JSON.parse(stdout) as { stats64: { rx: { packets: number } } }[])[0]!.stats64.rx.packets;
}
