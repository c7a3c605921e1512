// A strict test-side model of a host with an NVIDIA ConnectX (mlx5) NIC, plus the bits of the kernel's
// xfrm, tc and rtnetlink cores and of iproute2 that decide whether vfwire's commands succeed. It keeps
// state (eswitch mode, VFs and their MACs, representors, xfrm states and policies with their offload
// device, tc filters with in_hw and destinations, links, the bond) and refuses what the real stack
// refuses, with the errno and the text the tool would print. Every rule names its source in a one-line
// comment; RULES.md is the table. Commands or forms it cannot judge are refused too (UnmodeledCommand).
//
// It runs vfwire's Command objects: `ip [-n NS] ...`, `ip -batch -` with stdin lines, `tc ...`,
// `bridge ...`, `devlink ...`, `tee <sysfs file>` with the value on stdin, and with `ovs` facts
// `ovs-vsctl` and `ovs-ofctl` (ovs.ts), whose datapath flows ovsDatapath() runs through the tc model.

import type { Command } from '../../src/exec/step.js';
import { Mlx5Refusal, UnmodeledCommand, devlinkError, mlx5, netlinkError, teeError, toolError } from './refusal.js';
import { OvsModel, type OvsFacts, type OvsState } from './ovs.js';
import { runPipeline, type OvsOutput, type OvsPacket } from './ovs-rules.js';
import { parseFlower, type FlowerFilter, type TcAction } from './tc.js';
import { atLeast, parseVersion, type Version } from './versions.js';
import {
  mlx5ValidatePolicy,
  mlx5ValidateState,
  parsePolicyAdd,
  parsePolicyId,
  kernelView,
  parseStateAdd,
  parseStateId,
  protoName,
  sameSelector,
  xfrmCoreStateCheck,
  type IpsecCaps,
  type PolicyRequest,
  type SaRequest,
  type Selector,
} from './xfrm.js';

export type EswitchMode = 'legacy' | 'switchdev';

export interface PfFacts {
  name: string;
  /** PCI address as devlink names it (pci/<this>). */
  pci: string;
  /** sriov_totalvfs (the firmware's NUM_OF_VFS). */
  totalVfs: number;
  numVfs?: number;
  eswitch?: EswitchMode;
  steering?: 'dmfs' | 'smfs';
  up?: boolean;
  mtu?: number;
  /** CIDRs, e.g. 192.168.80.2/24. */
  addresses?: string[];
  /** sriov_drivers_autoprobe; the kernel default is 1. */
  driversAutoprobe?: boolean;
}

export interface HostFacts {
  /** uname -r, e.g. "6.12" or "6.1.0-31-amd64". */
  kernel: string;
  /** `ip -V` version, e.g. "6.15". */
  iproute2: string;
  /** The netns vfwire's `-n` names, if its commands carry one. */
  netns?: string;
  /** Where vfwire writes sysfs (its sysfsRoot), default /sys. */
  sysfsRoot?: string;
  pfs: PfFacts[];
  /** mlx5_ipsec_device_caps bits; ConnectX-6 Dx with crypto firmware: all true (the default). */
  ipsecCaps?: Partial<IpsecCaps>;
  /** Representor name of VF `vf` of a PF; default: the PF name without its `npN` suffix, then `r<vf>`. */
  repName?: (pf: string, vf: number) => string;
  /** Open vSwitch runs here (started by systemd, as openvswitch-switch does). */
  ovs?: OvsFacts;
}

/** A datapath flow of OVS: what the pipeline does with a frame, and where the flow then runs. */
export interface OvsDatapathFlow {
  outputs: OvsOutput[];
  /** The tc flower rule OVS asks for (netdev-offload-tc); absent without the flow API. */
  filter?: FlowerFilter;
  /** in_hw: the eswitch runs it; tc: tc's software path (policy none or skip_hw); kernel: OVS's datapath; unknown: not modelled. */
  runs: 'in_hw' | 'tc' | 'kernel' | 'unknown';
  /** Why it is not in hardware, where the driver or OVS said. */
  refusal?: Mlx5Refusal;
}

export type NetdevKind = 'pf' | 'rep' | 'vxlan' | 'bridge' | 'bond';

export interface Netdev {
  name: string;
  kind: NetdevKind;
  up: boolean;
  mtu: number;
  master?: string;
  addresses: string[];
  /** pf: itself; rep: the PF whose eswitch it belongs to. */
  pf?: string;
  vf?: number;
  /** Has an ingress qdisc. */
  ingress: boolean;
  /** The cable: false after setCarrier(name, false). Absent: true. */
  carrier?: boolean;
  vxlan?: {
    id?: number;
    external: boolean;
    dstport: number;
    local?: string;
    dev?: string;
    learning: boolean;
    fdb: { mac: string; dst: string }[];
  };
  bond?: { mode: string; miimon: number; slaves: string[] };
}

export interface VfInfo {
  mac: string;
  spoofchk?: boolean;
  trust?: boolean;
}

export interface PfState {
  name: string;
  pci: string;
  totalVfs: number;
  numVfs: number;
  eswitch: EswitchMode;
  steering: string;
  /** drivers/pci/iov.c sriov_init: drivers_autoprobe starts true. */
  driversAutoprobe: boolean;
  vfs: Record<number, VfInfo>;
  /** Offloaded xfrm objects per mlx5 steering table: RX per family, TX (en_accel/ipsec_fs.c rx_get/tx_get refcounts). */
  ipsecTables: { rx4: number; rx6: number; tx: number };
}

export interface SaState {
  src: string;
  dst: string;
  proto: number;
  spi: number;
  reqid: number;
  mode: string;
  saDir?: 'in' | 'out';
  esn: boolean;
  replayWindow: number;
  sel: Selector;
  offload?: { dev: string; pf: string; dir: 'in' | 'out'; type: 'packet' | 'crypto' };
}

export interface PolicyState {
  sel: Selector;
  dir: 'in' | 'out' | 'fwd';
  priority: number;
  reqid: number;
  offload?: { dev: string; pf: string };
}

export interface Destination {
  kind: 'vport' | 'uplink-encap';
  dev: string;
  pf: string;
}

export interface FilterState {
  dev: string;
  pref: number;
  handle: number;
  protocol: string;
  skipSw: boolean;
  inHw: boolean;
  /** The eswitch (PF) that holds the offloaded rule. */
  pf?: string;
  dests: Destination[];
  /** Encap traffic goes through the IPsec TX tables (eswitch_offloads.c esw_setup_dest_fwd_ipsec). */
  viaIpsecTx: boolean;
  spec: FlowerFilter;
}

export interface HostState {
  pfs: Record<string, PfState>;
  links: Record<string, Netdev>;
  states: SaState[];
  policies: PolicyState[];
  filters: FilterState[];
  lag: { bond: string; active: boolean } | null;
  /** VNIs with an admission chain in nftables' inet vfwire table (not the NIC's: the host's). */
  admission: number[];
  /** What the kernel would log or warn (extack warnings, dmesg), not refusals. */
  warnings: string[];
  /** Gratuitous ARPs sent (arping -U), with where the offloaded SAs were at that moment. */
  garps: { dev: string; address: string; saDevs: string[] }[];
  ovs?: OvsState;
}

const DEFAULT_CAPS: IpsecCaps = { crypto: true, packet: true, esn: true, tunnel: true, espInUdp: true, prio: true };
const DEFAULT_MTU = 1500;

export class Mlx5Host {
  readonly kernel: Version;
  readonly iproute2: Version;
  private readonly caps: IpsecCaps;
  private readonly netns?: string;
  private readonly sysfsRoot: string;
  private readonly repName: (pf: string, vf: number) => string;
  private readonly pfs = new Map<string, PfState>();
  private readonly links = new Map<string, Netdev>();
  private states: SaState[] = [];
  private policies: PolicyState[] = [];
  private filters: FilterState[] = [];
  private lag: HostState['lag'] = null;
  private readonly admission = new Set<number>();
  private readonly warnings: string[] = [];
  private readonly garps: HostState['garps'] = [];
  private readonly ovs?: OvsModel;
  private ovsPref = 1;

  constructor(facts: HostFacts) {
    this.kernel = parseVersion(facts.kernel);
    this.iproute2 = parseVersion(facts.iproute2);
    this.caps = { ...DEFAULT_CAPS, ...facts.ipsecCaps };
    this.netns = facts.netns;
    this.sysfsRoot = (facts.sysfsRoot ?? '/sys').replace(/\/+$/, '');
    this.repName = facts.repName ?? ((pf, vf) => `${pf.replace(/np\d+$/, '')}r${vf}`);
    for (const f of facts.pfs) {
      const numVfs = f.numVfs ?? 0;
      if (numVfs > f.totalVfs) throw new Error(`mlx5 model: ${f.name} has ${numVfs} VFs but totalVfs ${f.totalVfs}`);
      this.pfs.set(f.name, {
        name: f.name,
        pci: f.pci,
        totalVfs: f.totalVfs,
        numVfs,
        eswitch: f.eswitch ?? 'legacy',
        steering: f.steering ?? 'dmfs',
        driversAutoprobe: f.driversAutoprobe ?? true,
        vfs: {},
        ipsecTables: { rx4: 0, rx6: 0, tx: 0 },
      });
      this.links.set(f.name, {
        name: f.name,
        kind: 'pf',
        up: f.up ?? false,
        mtu: f.mtu ?? DEFAULT_MTU,
        addresses: [...(f.addresses ?? [])],
        pf: f.name,
        ingress: false,
      });
      for (let i = 0; i < numVfs; i++) this.pfs.get(f.name)!.vfs[i] = { mac: '00:00:00:00:00:00' };
      if ((f.eswitch ?? 'legacy') === 'switchdev') this.createReps(f.name);
    }
    if (facts.ovs)
      this.ovs = new OvsModel(facts.ovs, {
        get: (name) => this.links.get(name),
        addTunnelDevice: (name, dstport) => {
          if (!this.links.has(name))
            this.links.set(name, {
              name,
              kind: 'vxlan',
              up: true,
              mtu: 65000,
              addresses: [],
              ingress: false,
              vxlan: { external: true, dstport, learning: false, fdb: [] },
            });
        },
        ingress: (name) => {
          // lib/netdev-offload-tc.c netdev_tc_init_flow_api: OVS adds the ingress qdisc its rules hang on
          const d = this.links.get(name);
          if (d) d.ingress = true;
        },
      });
  }

  /**
   * What OVS's datapath does with a frame that misses it: the upcall's flow (the pipeline of the
   * bridge's OpenFlow rules), as the tc flower rule lib/netdev-offload-tc.c netdev_tc_flow_put
   * asks for, and whether mlx5 takes it. A flow tc or the driver refuses goes to OVS's kernel
   * datapath instead (lib/dpif-netlink.c dpif_netlink_operate: a put from an upcall, DPIF_OFFLOAD_AUTO,
   * falls back), so traffic still flows, at CPU speed.
   */
  ovsDatapath(p: OvsPacket): OvsDatapathFlow {
    if (!this.ovs) throw new UnmodeledCommand('a datapath flow on a host without Open vSwitch');
    const on = this.ovs.bridgeOf(p.inPort);
    if (!on) throw new UnmodeledCommand(`a frame on ${p.inPort}, which is no OVS port`);
    const [, br] = on;
    const iface = (port: string) => br.ports[port]!;
    const isTunnel = (port: string) => iface(port)?.type === 'vxlan';
    if (!!p.tunnel !== isTunnel(p.inPort))
      throw new UnmodeledCommand('tunnel metadata on a frame of a plain port, or none on the tunnel port');
    const { outputs, fields } = runPipeline(br.rules, p, isTunnel);
    const api = this.ovs.state().flowApi;
    if (!api) return { outputs, runs: 'kernel' };
    const match: Record<string, string> = {};
    if (fields.has('dl_src')) match['src_mac'] = p.dlSrc;
    if (fields.has('dl_dst')) match['dst_mac'] = p.dlDst;
    if (fields.has('arp_sha')) match['arp_sha'] = p.arpSha!;
    const actions: TcAction[] = [];
    if (p.tunnel) {
      // ofproto/tunnel.c tnl_wc_init: tun_id, the outer source and destination exact; lib/tc.c nl_msg_put_flower_tunnel adds the UDP port without a mask (exact: net/sched/cls_flower.c fl_set_key_val)
      match['enc_key_id'] = String(p.tunnel.id);
      match['enc_src_ip'] = p.tunnel.src;
      match['enc_dst_ip'] = p.tunnel.dst;
      match['enc_dst_port'] = iface(p.inPort).options['dst_port'] ?? '4789';
      // lib/tc.c nl_msg_put_flower_acts: a flow from a tunnel starts with tunnel_key unset
      actions.push({ kind: 'decap' });
    }
    outputs.forEach((o, i) => {
      const mode = i === outputs.length - 1 ? 'redirect' : 'mirror';
      if (!o.tunnel) return actions.push({ kind: 'mirred', mode, dev: o.port });
      const t = iface(o.port);
      const dstPort = Number(t.options['dst_port'] ?? 4789);
      actions.push({
        kind: 'encap',
        vni: o.tunnel.id,
        src: t.options['local_ip']!,
        dst: o.tunnel.dst,
        dstPort,
        csum: false,
      });
      actions.push({ kind: 'mirred', mode, dev: this.ovs!.datapathDevice(o.port, t) });
    });
    if (!outputs.length) actions.push({ kind: 'drop' });
    const filter: FlowerFilter = {
      verb: 'add',
      dev: this.ovs.datapathDevice(p.inPort, iface(p.inPort)),
      pref: this.ovsPref++,
      handle: 1,
      protocol: fields.has('dl_type') ? (p.arpSha !== undefined ? 'arp' : 'ip') : 'all',
      skipSw: api.tcPolicy === 'skip_sw',
      skipHw: api.tcPolicy === 'skip_hw',
      match,
      actions,
    };
    if (filter.skipHw) {
      this.putFilter(filter, undefined, { dests: [], viaIpsecTx: false }, false);
      return { outputs, filter, runs: 'tc' };
    }
    const d = this.links.get(filter.dev)!;
    let placed: ReturnType<Mlx5Host['offloadFlower']>;
    try {
      placed = this.offloadFlower(filter, d);
    } catch (e) {
      // What the model cannot judge, it says so: the outputs stand, where the flow runs is unknown.
      if (e instanceof UnmodeledCommand) return { outputs, filter, runs: 'unknown', refusal: e };
      throw e;
    }
    if ('refusal' in placed) {
      if (filter.skipSw) return { outputs, filter, runs: 'kernel', refusal: placed.refusal };
      this.putFilter(filter, undefined, { dests: [], viaIpsecTx: false }, false);
      return { outputs, filter, runs: 'tc', refusal: placed.refusal };
    }
    this.putFilter(filter, undefined, placed, true);
    return { outputs, filter, runs: 'in_hw' };
  }

  // ---------------------------------------------------------------- public API

  /** Runs one vfwire Command; returns its stdout. Throws Mlx5Refusal (or UnmodeledCommand). */
  run(cmd: Command): string {
    const [tool, ...rest] = cmd.argv;
    switch (tool) {
      case 'ip':
        // `ip netns exec NS arping`: arping has no -n (exec/tools.ts).
        if (rest[0] === 'netns' && rest[1] === 'exec' && rest[3] === 'arping') {
          if (rest[2] !== this.netns)
            throw new UnmodeledCommand(
              `arping in netns ${rest[2]} (the host's netns is ${this.netns ?? 'the root one'})`,
            );
          return this.arping(rest.slice(4));
        }
        return this.ip(rest, cmd.stdin);
      case 'tc':
        return this.tc(this.stripNetns(rest, 'tc'));
      case 'bridge':
        return this.bridge(this.stripNetns(rest, 'bridge'));
      case 'devlink':
        return this.devlink(rest);
      case 'tee':
        return this.tee(rest, cmd.stdin);
      case 'nft':
        return this.nft(rest, cmd.stdin);
      case 'ovs-vsctl':
        if (!this.ovs) throw new UnmodeledCommand('ovs-vsctl on a host without Open vSwitch');
        return this.ovs.vsctl(rest);
      case 'ovs-ofctl':
        if (!this.ovs) throw new UnmodeledCommand('ovs-ofctl on a host without Open vSwitch');
        return this.ovs.ofctl(rest, cmd.stdin);
      case 'arping':
        if (this.netns !== undefined)
          throw new UnmodeledCommand(`arping outside netns ${this.netns} on a host whose links live there`);
        return this.arping(rest);
      default:
        throw new UnmodeledCommand(`the program ${JSON.stringify(tool)}`);
    }
  }

  /**
   * A netdev going down, by `ip link set ... down`, a cable, or a failover: the kernel's NETDEV_DOWN
   * handling, with the xfrm flush of the states and policies offloaded to it.
   */
  setLinkDown(name: string): void {
    const d = this.links.get(name);
    if (!d) throw new UnmodeledCommand(`a link-down of the unknown netdev ${name}`);
    if (!d.up) return;
    d.up = false;
    // net/xfrm/xfrm_device.c xfrm_dev_down: NETDEV_DOWN on a NETIF_F_HW_ESP netdev flushes its offloaded states and (since 919e43fad516, v6.2) policies
    if (this.hasHwEsp(d)) this.flushXfrmOffloadedTo(name);
  }

  /**
   * A cable pulled or a switch port down: the netdev stays admin up with no carrier
   * (NETDEV_CHANGE). xfrm flushes nothing for it: net/xfrm/xfrm_device.c xfrm_dev_event acts on
   * NETDEV_DOWN and NETDEV_UNREGISTER only, so what is offloaded to it stays.
   */
  setCarrier(name: string, on: boolean): void {
    const d = this.links.get(name);
    if (!d) throw new UnmodeledCommand(`a carrier change of the unknown netdev ${name}`);
    d.carrier = on;
  }

  state(): HostState {
    return structuredClone({
      pfs: Object.fromEntries(this.pfs),
      links: Object.fromEntries(this.links),
      states: this.states,
      policies: this.policies,
      filters: this.filters,
      lag: this.lag,
      admission: [...this.admission].sort((a, b) => a - b),
      warnings: this.warnings,
      garps: this.garps,
      ...(this.ovs ? { ovs: this.ovs.state() } : {}),
    });
  }

  // ---------------------------------------------------------------- ip

  private stripNetns(args: string[], tool: string): string[] {
    if (args[0] === '-n') {
      if (args[1] !== this.netns)
        throw new UnmodeledCommand(`${tool} -n ${args[1]} (the host's netns is ${this.netns ?? 'the root one'})`);
      return args.slice(2);
    }
    if (this.netns !== undefined)
      throw new UnmodeledCommand(`${tool} without -n ${this.netns} on a host whose links live there`);
    return args;
  }

  private ip(argsIn: string[], stdin: string | undefined): string {
    let args = this.stripNetns(argsIn, 'ip');
    const opts = new Set<string>();
    while (args[0]?.startsWith('-') && args[0] !== '-batch') {
      opts.add(args[0]);
      args = args.slice(1);
    }
    for (const o of opts) if (!['-j', '-d', '-s'].includes(o)) throw new UnmodeledCommand(`ip option ${o}`);
    if (args[0] === '-batch') {
      if (args[1] !== '-' || args.length !== 2 || stdin === undefined)
        throw new UnmodeledCommand('ip -batch other than "-batch -" with stdin');
      return this.ipBatch(stdin);
    }
    if (stdin !== undefined) throw new UnmodeledCommand('ip with stdin outside -batch');
    return this.ipCommand(args, opts);
  }

  // ip/ip.c batch -> lib/utils.c do_batch: one command per line; without -force the first failure stops the batch
  private ipBatch(stdin: string): string {
    const out: string[] = [];
    const lines = stdin.split('\n');
    for (let n = 0; n < lines.length; n++) {
      const argv = lines[n]!.trim().split(/\s+/).filter(Boolean);
      if (!argv.length) continue;
      try {
        out.push(this.ipCommand(argv, new Set()));
      } catch (e) {
        // a parser's exit(-1) ends ip at once; a failed command gets "Command failed -:N" (lib/utils.c do_batch)
        if (e instanceof Mlx5Refusal && e.exitCode !== 255)
          throw new Mlx5Refusal(e.rule, e.errno, `${e.stderr}\nCommand failed -:${n + 1}`, 1);
        throw e;
      }
    }
    return out.join('');
  }

  private ipCommand(args: string[], opts: Set<string>): string {
    const [obj, verb, ...rest] = args;
    if (obj === 'link') return this.ipLink(verb, rest, opts);
    if (obj === 'addr' || obj === 'address')
      return verb === 'show' ? this.ipAddrShow(rest, opts) : this.ipAddr(verb, rest);
    if (obj === 'xfrm') return this.ipXfrm(verb, rest);
    throw new UnmodeledCommand(`ip ${args.slice(0, 2).join(' ')}`);
  }

  private link(name: string | undefined, exit = 1): Netdev {
    const d = name === undefined ? undefined : this.links.get(name);
    // lib/utils.c nodev: iproute2 resolves the name itself and prints this before any netlink message
    if (!d) throw new Mlx5Refusal('iproute2.no-such-device', null, `Cannot find device "${name}"`, exit);
    return d;
  }

  private ipLink(verb: string | undefined, args: string[], opts: Set<string>): string {
    if (verb === 'show') {
      if (args[0] !== 'dev' || args.length !== 2) throw new UnmodeledCommand(`ip link show ${args.join(' ')}`);
      const d = this.links.get(args[1]!);
      // ip/ipaddress.c ipaddr_list_flush_or_save: an unknown filter device
      if (!d) throw new Mlx5Refusal('iproute2.no-such-device', null, `Device "${args[1]}" does not exist.`, 1);
      return opts.has('-j')
        ? JSON.stringify([
            { ifname: d.name, mtu: d.mtu, operstate: d.up ? 'UP' : 'DOWN', ...(d.master ? { master: d.master } : {}) },
          ]) + '\n'
        : `${d.name}: mtu ${d.mtu} state ${d.up ? 'UP' : 'DOWN'}\n`;
    }
    if (verb === 'add') return this.linkAdd(args);
    if (verb === 'del' || verb === 'delete') {
      const name = args[0] === 'dev' ? args[1] : args[0];
      if (args.length !== (args[0] === 'dev' ? 2 : 1)) throw new UnmodeledCommand(`ip link del ${args.join(' ')}`);
      return this.linkDel(this.link(name));
    }
    if (verb === 'set') return this.linkSet(args);
    throw new UnmodeledCommand(`ip link ${verb}`);
  }

  private linkAdd(args: string[]): string {
    const name = args[0];
    if (!name) throw new UnmodeledCommand('ip link add without a name');
    let i = 1;
    let mtu: number | undefined;
    if (args[i] === 'mtu') {
      mtu = Number(args[i + 1]);
      i += 2;
    }
    if (args[i] !== 'type') throw new UnmodeledCommand(`ip link add ${args.join(' ')}`);
    const type = args[i + 1];
    const opts = args.slice(i + 2);
    // net/core/rtnetlink.c __rtnl_newlink -> rtnl_changelink: ip link add sends NLM_F_EXCL, so an existing name is EEXIST
    if (this.links.has(name)) throw netlinkError('rtnetlink.link-exists', 'EEXIST');
    const d: Netdev = { name, kind: 'bridge', up: false, mtu: mtu ?? DEFAULT_MTU, addresses: [], ingress: false };
    if (type === 'bridge') {
      if (opts.length) throw new UnmodeledCommand(`bridge options ${opts.join(' ')}`);
    } else if (type === 'vxlan') {
      d.kind = 'vxlan';
      const vx: NonNullable<Netdev['vxlan']> = { external: false, dstport: 0, learning: true, fdb: [] };
      for (let j = 0; j < opts.length; j++) {
        const o = opts[j]!;
        if (o === 'id') vx.id = Number(opts[++j]);
        else if (o === 'dstport') vx.dstport = Number(opts[++j]);
        else if (o === 'local') vx.local = opts[++j];
        else if (o === 'dev') vx.dev = this.link(opts[++j]).name;
        else if (o === 'nolearning') vx.learning = false;
        else if (o === 'external') vx.external = true;
        else throw new UnmodeledCommand(`the vxlan option ${o}`);
      }
      if (vx.id === undefined && !vx.external) throw new UnmodeledCommand('a vxlan without id or external');
      d.vxlan = vx;
    } else if (type === 'bond') {
      d.kind = 'bond';
      const bond = { mode: 'balance-rr', miimon: 0, slaves: [] as string[] };
      for (let j = 0; j < opts.length; j++) {
        if (opts[j] === 'mode') bond.mode = opts[++j]!;
        else if (opts[j] === 'miimon') bond.miimon = Number(opts[++j]);
        else throw new UnmodeledCommand(`the bond option ${opts[j]}`);
      }
      if (!['active-backup', '802.3ad', 'balance-rr', 'balance-xor'].includes(bond.mode))
        throw new UnmodeledCommand(`bond mode ${bond.mode}`);
      d.bond = bond;
    } else {
      throw new UnmodeledCommand(`ip link add type ${type}`);
    }
    this.links.set(name, d);
    return '';
  }

  private linkDel(d: Netdev): string {
    if (d.kind === 'pf' || d.kind === 'rep') throw new UnmodeledCommand(`deleting the ${d.kind} ${d.name}`);
    // net/xfrm/xfrm_device.c xfrm_dev_event: NETDEV_UNREGISTER flushes what was offloaded to the netdev, like NETDEV_DOWN
    if (this.hasHwEsp(d)) this.flushXfrmOffloadedTo(d.name);
    // net/sched: a netdev's qdiscs and their filters go with it; the driver deletes the offloaded rules
    for (const f of this.filters.filter((x) => x.dev === d.name)) this.removeFilter(f);
    for (const l of this.links.values()) if (l.master === d.name) l.master = undefined;
    if (d.bond) for (const s of d.bond.slaves) this.links.get(s)!.master = undefined;
    this.links.delete(d.name);
    this.updateLag();
    return '';
  }

  private linkSet(args: string[]): string {
    if (args[0] !== 'dev') throw new UnmodeledCommand(`ip link set ${args.join(' ')}`);
    const d = this.link(args[1]);
    const rest = args.slice(2);
    if (rest[0] === 'vf') return this.setVf(d, rest.slice(1));
    if (rest[0] === 'type' && rest[1] === 'bond' && rest[2] === 'miimon' && rest.length === 4) {
      if (!d.bond) throw new UnmodeledCommand(`ip link set ${d.name} type bond on a ${d.kind}`);
      d.bond.miimon = Number(rest[3]);
      return '';
    }
    let mtu: number | undefined;
    let master: string | null | undefined;
    let updown: 'up' | 'down' | undefined;
    for (let i = 0; i < rest.length; i++) {
      const t = rest[i];
      if (t === 'mtu') mtu = Number(rest[++i]);
      else if (t === 'master') master = rest[++i]!;
      else if (t === 'nomaster') master = null;
      else if (t === 'up' || t === 'down') updown = t;
      else throw new UnmodeledCommand(`ip link set ${d.name} ${t}`);
    }
    const m = typeof master === 'string' ? this.link(master) : undefined;
    if (m?.kind === 'bond' && updown === 'up')
      throw new UnmodeledCommand(
        'enslaving to a bond and "up" in one command (rtnetlink order of master and flags is not modeled)',
      );
    if (mtu !== undefined) {
      if (!Number.isInteger(mtu) || mtu < 68) throw new UnmodeledCommand(`mtu ${mtu}`);
      d.mtu = mtu;
    }
    if (master === null) this.release(d);
    else if (m) this.enslave(d, m);
    if (updown === 'up') d.up = true;
    else if (updown === 'down') this.setLinkDown(d.name);
    return '';
  }

  private enslave(d: Netdev, m: Netdev): void {
    if (m.kind === 'bridge') {
      if (d.master && d.master !== m.name) throw new UnmodeledCommand(`moving ${d.name} from ${d.master} to ${m.name}`);
      d.master = m.name;
      return;
    }
    if (m.kind !== 'bond' || d.kind !== 'pf')
      throw new UnmodeledCommand(`${d.kind} ${d.name} as a port of the ${m.kind} ${m.name}`);
    if (d.master === m.name) return;
    // drivers/net/bonding/bond_main.c bond_enslave: "Device can not be enslaved while up", EPERM
    if (d.up) throw netlinkError('bonding.enslave-while-up', 'EPERM', 'Device can not be enslaved while up');
    d.master = m.name;
    m.bond!.slaves.push(d.name);
    // drivers/net/bonding/bond_main.c bond_enslave: the bond opens the slave itself (dev_open)
    d.up = true;
    this.updateLag();
  }

  private release(d: Netdev): void {
    if (!d.master) return;
    const m = this.links.get(d.master);
    if (m?.bond) m.bond.slaves = m.bond.slaves.filter((s) => s !== d.name);
    d.master = undefined;
    this.updateLag();
  }

  // lag/lag.c mlx5_handle_changeupper_event + mlx5_lag_check_prereq: VF LAG forms only over both ports of the NIC, alone
  // in one bond of tx type active-backup or hash, with both eswitches in the same mode and no VFs outside switchdev
  private updateLag(): void {
    const pfNames = [...this.pfs.keys()];
    const bond = [...this.links.values()].find((l) => l.bond && pfNames.some((p) => l.bond!.slaves.includes(p)));
    if (!bond || pfNames.length !== 2) {
      this.lag = null;
      return;
    }
    const inLag = bond.bond!.slaves.length === 2 && pfNames.every((p) => bond.bond!.slaves.includes(p));
    const pfs = pfNames.map((p) => this.pfs.get(p)!);
    const prereq =
      pfs.every((p) => !(p.numVfs > 0 && p.eswitch !== 'switchdev')) && pfs[0]!.eswitch === pfs[1]!.eswitch;
    const txTypeOk = bond.bond!.mode === 'active-backup';
    if (inLag && bond.bond!.mode !== 'active-backup') {
      // only active-backup's tx type is sourced here (bonding's mode -> netdev_lag_tx_type mapping is not)
      this.warnings.push(`mlx5 model: whether mlx5 forms a VF LAG over a ${bond.bond!.mode} bond is not modeled`);
    }
    const active = inLag && prereq && txTypeOk;
    if (active && pfs.some((p) => p.numVfs > 0)) {
      // lag/lag.c mlx5_activate_lag: the firmware refuses "Make sure all VFs are unbound prior to VF LAG activation or deactivation"
      this.warnings.push(
        'mlx5_core: Failed to activate VF LAG\nMake sure all VFs are unbound prior to VF LAG activation or deactivation (the model does not know which VFs are bound)',
      );
    }
    this.lag = { bond: bond.name, active };
  }

  private setVf(d: Netdev, args: string[]): string {
    const pf = d.kind === 'pf' ? this.pfs.get(d.name)! : undefined;
    if (!pf) throw new UnmodeledCommand(`vf settings on the ${d.kind} ${d.name}`);
    const vf = Number(args[0]);
    if (!Number.isInteger(vf) || vf < 0) throw new UnmodeledCommand(`vf ${args[0]}`);
    if (vf >= pf.numVfs) throw new UnmodeledCommand(`vf ${vf} of ${pf.name}, which has ${pf.numVfs} VFs`);
    // ip/iplink.c iplink_parse_vf: every attribute after "vf N" goes into one IFLA_VF_INFO
    const attrs: { mac?: string; vlan?: number; spoofchk?: boolean; state?: string; trust?: boolean } = {};
    for (let i = 1; i < args.length; i++) {
      const k = args[i];
      const v = args[++i];
      if (v === undefined) throw new UnmodeledCommand(`vf ${k} without a value`);
      if (k === 'mac') attrs.mac = v.toLowerCase();
      else if (k === 'vlan') attrs.vlan = Number(v);
      else if (k === 'spoofchk' || k === 'trust') {
        if (v !== 'on' && v !== 'off') throw new UnmodeledCommand(`vf ${k} ${v}`);
        attrs[k] = v === 'on';
      } else if (k === 'state') attrs.state = v;
      else throw new UnmodeledCommand(`the vf attribute ${k}`);
    }
    const info = pf.vfs[vf]!;
    const legacyOnly = pf.eswitch === 'switchdev' && atLeast(this.kernel, '5.13');
    // net/core/rtnetlink.c do_setvfinfo applies the attributes in a fixed order (MAC, VLAN(_LIST), rates, SPOOFCHK,
    // LINK_STATE, RSS, TRUST) and returns at the first error: what came before it stays applied
    if (attrs.mac !== undefined) {
      // eswitch.c mlx5_eswitch_set_vport_mac: any eswitch mode; a multicast address is EINVAL
      if (parseInt(attrs.mac.split(':')[0]!, 16) & 1) throw netlinkError('mlx5.esw.vf-mac-multicast', 'EINVAL');
      info.mac = attrs.mac;
    }
    if (attrs.vlan !== undefined) {
      // esw/legacy.c mlx5_eswitch_set_vport_vlan: outside legacy, vlan 0 is a no-op (libvirt compatibility), any other EOPNOTSUPP (5.13, "Allow legacy vf ndos only if in legacy mode")
      if (legacyOnly && attrs.vlan !== 0) throw netlinkError('mlx5.esw.vf-vlan-legacy-only', 'EOPNOTSUPP');
      if (!legacyOnly && attrs.vlan !== 0) throw new UnmodeledCommand('a VF vlan in legacy mode');
    }
    if (attrs.spoofchk !== undefined) {
      // esw/legacy.c mlx5_eswitch_set_vport_spoofchk: EOPNOTSUPP unless legacy (5.13, "Allow legacy vf ndos only if in legacy mode")
      if (legacyOnly) throw netlinkError('mlx5.esw.spoofchk-legacy-only', 'EOPNOTSUPP');
      info.spoofchk = attrs.spoofchk;
    }
    if (attrs.state !== undefined) {
      // en_main.c mlx5e_set_vf_link_state (uplink representor) and eswitch.c mlx5_eswitch_set_vport_state: EOPNOTSUPP unless legacy (5.13)
      if (legacyOnly) throw netlinkError('mlx5.esw.vf-state-legacy-only', 'EOPNOTSUPP');
      throw new UnmodeledCommand('a VF link state in legacy mode');
    }
    if (attrs.trust !== undefined) {
      // esw/legacy.c mlx5_eswitch_set_vport_trust: EOPNOTSUPP unless legacy (5.13)
      if (legacyOnly) throw netlinkError('mlx5.esw.trust-legacy-only', 'EOPNOTSUPP');
      info.trust = attrs.trust;
    }
    return '';
  }

  // ip/ipaddress.c ipaddr_list_flush_or_save with -j: the link's flags (LOWER_UP from the carrier) and its addresses
  private ipAddrShow(args: string[], opts: Set<string>): string {
    if (!opts.has('-j') || args.length !== 2 || args[0] !== 'dev')
      throw new UnmodeledCommand(`ip addr show ${args.join(' ')} without -j dev NAME`);
    const d = this.link(args[1]);
    const flags = [...(d.up ? ['UP'] : []), ...(d.up && d.carrier !== false ? ['LOWER_UP'] : [])];
    const addrInfo = d.addresses.map((cidr) => ({
      family: 'inet',
      local: cidr.split('/')[0],
      prefixlen: Number(cidr.split('/')[1]),
    }));
    return (
      JSON.stringify([
        {
          ifname: d.name,
          flags,
          mtu: d.mtu,
          operstate: d.up && d.carrier !== false ? 'UP' : 'DOWN',
          addr_info: addrInfo,
        },
      ]) + '\n'
    );
  }

  private ipAddr(verb: string | undefined, args: string[]): string {
    if ((verb !== 'add' && verb !== 'del') || args.length !== 3 || args[1] !== 'dev')
      throw new UnmodeledCommand(`ip addr ${verb} ${args.join(' ')}`);
    const d = this.link(args[2]);
    const cidr = args[0]!;
    if (verb === 'add') {
      if (d.addresses.includes(cidr)) throw new UnmodeledCommand(`adding ${cidr} to ${d.name} twice`);
      d.addresses.push(cidr);
    } else {
      if (!d.addresses.includes(cidr)) throw new UnmodeledCommand(`deleting ${cidr} that ${d.name} does not have`);
      d.addresses = d.addresses.filter((a) => a !== cidr);
    }
    return '';
  }

  // ---------------------------------------------------------------- xfrm

  private ipXfrm(verb: string | undefined, args: string[]): string {
    const [what, ...rest] = [verb, ...args];
    const sub = rest[0];
    const tail = rest.slice(1);
    if (what === 'state') {
      if (sub === 'add') return this.stateAdd(parseStateAdd('add', tail, this.iproute2));
      if (sub === 'delete' || sub === 'get') return this.stateDelGet(sub, tail);
      throw new UnmodeledCommand(`ip xfrm state ${sub}`);
    }
    if (what === 'policy') {
      if (sub === 'add' || sub === 'update') return this.policyAdd(parsePolicyAdd(sub, tail, this.iproute2));
      if (sub === 'delete' || sub === 'get') return this.policyDelGet(sub, tail);
      throw new UnmodeledCommand(`ip xfrm policy ${sub}`);
    }
    throw new UnmodeledCommand(`ip xfrm ${what}`);
  }

  /** The mlx5 PF that executes an xfrm offload to `dev`, or the refusal; bonds pass to their active slave. */
  private offloadTarget(devName: string, policy: boolean): { pf: PfState } {
    const d = this.links.get(devName);
    // ip/xfrm_state.c, ip/xfrm_policy.c: ll_name_to_index fails -> invarg
    if (!d) throw toolError('iproute2.xfrm.offload-dev', `Error: argument "${devName}" is wrong: Invalid device name`);
    if (policy) {
      // net/xfrm/xfrm_device.c xfrm_dev_policy_add: a netdev without xdo_dev_policy_add (bond_xfrmdev_ops has none) -> EINVAL
      if (d.kind !== 'pf')
        throw netlinkError('xfrm.policy-offload-unsupported-dev', 'EINVAL', 'Policy offload is not supported');
      return { pf: this.pfs.get(d.name)! };
    }
    if (d.kind === 'bond') {
      // drivers/net/bonding/bond_main.c bond_ipsec_add_sa: the SA goes to curr_active_slave; none -> ENODEV
      const active = this.activeSlave(d);
      if (!active) throw netlinkError('bonding.ipsec-no-active-slave', 'ENODEV');
      return { pf: this.pfs.get(active)! };
    }
    // net/xfrm/xfrm_device.c xfrm_dev_state_add: a netdev without xfrmdev_ops fails packet offload with EINVAL
    if (d.kind !== 'pf') throw netlinkError('xfrm.state-offload-no-xfrmdev-ops', 'EINVAL');
    return { pf: this.pfs.get(d.name)! };
  }

  private activeSlave(bond: Netdev): string | undefined {
    // the first slave that is up: the model does not follow bonding's reselection beyond that
    return bond.bond!.slaves.find((s) => this.links.get(s)?.up);
  }

  /** mlx5 checks shared by states and policies, in the order mlx5e_xfrm_add_state/add_policy run them. */
  private mlx5Admit(pf: PfState, dirIn: boolean, family: 4 | 6, packet: boolean, what: 'state' | 'policy'): void {
    const failed = mlx5(`Device failed to offload this ${what}`);
    // en_accel/ipsec.c; packet offload in switchdev came with c6c2bf5db4ea/1762f132d542 (v6.6); NVIDIA's IPsec Packet Offload page: "requires Linux kernel v6.6"
    if (pf.eswitch === 'switchdev' && packet && !atLeast(this.kernel, '6.6')) {
      throw new Mlx5Refusal(
        'mlx5.ipsec.switchdev-needs-6.6',
        null,
        'mlx5 model: IPsec packet offload in switchdev mode needs kernel >= 6.6; what an older kernel answers is not modeled',
        2,
      );
    }
    if (atLeast(this.kernel, '6.6') && packet) {
      // en_accel/ipsec_fs.c mlx5e_ipsec_block_tc_offload (c8e350e62fc5, v6.6): no IPsec packet offload on a netdev with its own TC rules
      if (this.filters.some((f) => f.dev === pf.name && f.inHw))
        throw netlinkError('mlx5.ipsec.tc-on-same-netdev', 'EBUSY', failed);
    }
    const t = pf.ipsecTables;
    const first = dirIn ? (family === 4 ? t.rx4 : t.rx6) === 0 : t.tx === 0;
    if (first && atLeast(this.kernel, '6.6') && this.tcFlows(pf.name) > 0) {
      // en_accel/ipsec_fs.c rx_get/tx_get -> eswitch_offloads.c mlx5_eswitch_block_mode -> eswitch.c mlx5_esw_try_lock: the first
      // IPsec rule of a direction creates its tables, refused with EBUSY while the eswitch holds offloaded TC flows (366e46242b8e, v6.6)
      throw netlinkError('mlx5.ipsec.first-rule-while-tc-flows', 'EBUSY', failed);
    }
    if (pf.eswitch === 'switchdev' && packet && this.lag?.active) {
      // bdf788cf224f (v6.7, 6.6.y): "IPSec packet offload in switchdev mode is not supported with LAG"; where it is enforced is not established
      this.warnings.push(
        `mlx5 model: IPsec packet offload on ${pf.name} in switchdev with VF LAG active is not supported by mlx5 (bdf788cf224f)`,
      );
    }
  }

  private takeTables(pf: PfState, dirIn: boolean, family: 4 | 6, delta: 1 | -1): void {
    const t = pf.ipsecTables;
    if (dirIn) {
      if (family === 4) t.rx4 += delta;
      else t.rx6 += delta;
      return;
    }
    t.tx += delta;
    if (delta === -1 && t.tx === 0) {
      // en_accel/ipsec_fs.c tx_put -> esw/ipsec_fs.c mlx5_esw_ipsec_restore_dest_uplink (d1569537a837, v6.6): with the last TX
      // rule gone, TC rules that forwarded to the IPsec TX table are pointed at the uplink again: their traffic leaves unencrypted
      for (const f of this.filters) if (f.pf === pf.name && f.viaIpsecTx) f.viaIpsecTx = false;
    }
  }

  private stateAdd(asSent: SaRequest): string {
    const req = kernelView(asSent, this.kernel);
    const core = xfrmCoreStateCheck(req, this.kernel);
    if (core) throw core;
    let offload: SaState['offload'];
    if (req.offload) {
      if (!req.offload.packet) throw new UnmodeledCommand('crypto (non-packet) offload');
      const { pf } = this.offloadTarget(req.offload.dev, false);
      const v = mlx5ValidateState(req, this.caps, this.kernel);
      if (v) throw v;
      this.mlx5Admit(pf, req.offload.inbound, req.family, true, 'state');
      offload = { dev: req.offload.dev, pf: pf.name, dir: req.offload.inbound ? 'in' : 'out', type: 'packet' };
    }
    // net/xfrm/xfrm_state.c xfrm_state_add: an SA with the same daddr/spi/proto exists -> EEXIST (after the driver accepted it; it is then deleted again)
    if (this.states.some((s) => s.dst === req.dst && s.spi === req.spi && s.proto === req.proto))
      throw netlinkError('xfrm.state-exists', 'EEXIST');
    if (offload) this.takeTables(this.pfs.get(offload.pf)!, offload.dir === 'in', req.family, 1);
    this.states.push({
      src: req.src,
      dst: req.dst,
      proto: req.proto,
      spi: req.spi,
      reqid: req.reqid,
      mode: req.mode,
      ...(req.saDir ? { saDir: req.saDir } : {}),
      esn: req.esn,
      replayWindow: req.replayWindow,
      sel: req.sel,
      ...(offload ? { offload } : {}),
    });
    return '';
  }

  private stateDelGet(verb: 'delete' | 'get', args: string[]): string {
    const id = parseStateId(args);
    // net/xfrm/xfrm_user.c xfrm_user_state_lookup: by daddr/spi/proto; none -> ESRCH
    const s = this.states.find((x) => x.dst === id.dst && x.spi === id.spi && x.proto === id.proto);
    if (!s) throw netlinkError('xfrm.state-not-found', 'ESRCH');
    if (verb === 'get')
      return `src ${s.src} dst ${s.dst}\n\tproto ${protoName(s.proto)} spi 0x${s.spi.toString(16).padStart(8, '0')} reqid ${s.reqid} mode ${s.mode}\n`;
    this.removeState(s);
    return '';
  }

  private removeState(s: SaState): void {
    this.states = this.states.filter((x) => x !== s);
    if (s.offload)
      this.takeTables(this.pfs.get(s.offload.pf)!, s.offload.dir === 'in', s.src.includes(':') ? 6 : 4, -1);
  }

  private policyAdd(req: PolicyRequest): string {
    let offload: PolicyState['offload'];
    if (req.offload) {
      if (!atLeast(this.kernel, '6.2')) {
        // 919e43fad516 (v6.2) made xfrm_policy_construct read XFRMA_OFFLOAD_DEV; before it the attribute is ignored
        this.warnings.push(
          `kernel ${this.kernel.join('.')}: the policy's offload attribute is ignored, the policy is software only`,
        );
      } else {
        const { pf } = this.offloadTarget(req.offload.dev, true);
        const v = mlx5ValidatePolicy(req, this.caps, this.kernel);
        if (v) throw v;
        if (req.dir !== 'fwd') this.mlx5Admit(pf, req.dir === 'in', this.selFamily(req.sel), true, 'policy');
        offload = { dev: req.offload.dev, pf: pf.name };
      }
    }
    // net/xfrm/xfrm_policy.c xfrm_policy_insert: same type/dir/selector/mark/if_id -> EEXIST for add (NLM_F_EXCL), replace for update
    const old = this.policies.find((p) => p.dir === req.dir && sameSelector(p.sel, req.sel));
    if (old && req.verb === 'add') throw netlinkError('xfrm.policy-exists', 'EEXIST');
    if (offload) this.takeTables(this.pfs.get(offload.pf)!, req.dir === 'in', this.selFamily(req.sel), 1);
    if (old) this.removePolicy(old);
    this.policies.push({
      sel: req.sel,
      dir: req.dir,
      priority: req.priority,
      reqid: req.tmpls[0]?.reqid ?? 0,
      ...(offload ? { offload } : {}),
    });
    return '';
  }

  private selFamily(sel: Selector): 4 | 6 {
    return (sel.src ?? sel.dst ?? '').includes(':') ? 6 : 4;
  }

  private policyDelGet(verb: 'delete' | 'get', args: string[]): string {
    const id = parsePolicyId(args);
    // net/xfrm/xfrm_user.c xfrm_get_policy: no policy with that selector and dir -> ENOENT
    const p = this.policies.find((x) => x.dir === id.dir && sameSelector(x.sel, id.sel));
    if (!p) throw netlinkError('xfrm.policy-not-found', 'ENOENT');
    if (verb === 'get')
      return `src ${p.sel.src ?? '0.0.0.0/0'} dst ${p.sel.dst ?? '0.0.0.0/0'}\n\tdir ${p.dir} priority ${p.priority}\n`;
    this.removePolicy(p);
    return '';
  }

  private removePolicy(p: PolicyState): void {
    this.policies = this.policies.filter((x) => x !== p);
    if (p.offload) this.takeTables(this.pfs.get(p.offload.pf)!, p.dir === 'in', this.selFamily(p.sel), -1);
  }

  private flushXfrmOffloadedTo(dev: string): void {
    for (const s of this.states.filter((x) => x.offload?.dev === dev)) this.removeState(s);
    // the policy flush came with 919e43fad516 (v6.2), together with policy offload itself
    for (const p of this.policies.filter((x) => x.offload?.dev === dev)) this.removePolicy(p);
  }

  private hasHwEsp(d: Netdev): boolean {
    // en_accel/ipsec.c mlx5e_ipsec_build_netdev: NETIF_F_HW_ESP when the device has IPsec caps
    if (d.kind === 'pf') return this.caps.crypto || this.caps.packet;
    // drivers/net/bonding/bond_main.c bond_setup: BOND_XFRM_FEATURES only in active-backup
    if (d.kind === 'bond') return d.bond!.mode === 'active-backup';
    return false;
  }

  // ---------------------------------------------------------------- tc

  private tcFlows(pf: string): number {
    return this.filters.filter((f) => f.pf === pf && f.inHw).length;
  }

  private tc(args: string[]): string {
    const [obj, ...rest] = args;
    if (obj === 'qdisc') return this.tcQdisc(rest);
    if (obj === 'filter') return this.tcFilter(parseFlower(rest));
    throw new UnmodeledCommand(`tc ${obj}`);
  }

  private tcQdisc(args: string[]): string {
    const [verb, dev, name, kind, ...extra] = args;
    if ((verb !== 'add' && verb !== 'del') || dev !== 'dev' || kind !== 'ingress' || extra.length)
      throw new UnmodeledCommand(`tc qdisc ${args.join(' ')}`);
    const d = this.link(name);
    if (verb === 'add') {
      if (d.ingress) throw new UnmodeledCommand(`a second ingress qdisc on ${d.name}`);
      d.ingress = true;
    } else {
      if (!d.ingress) throw new UnmodeledCommand(`deleting an ingress qdisc ${d.name} does not have`);
      for (const f of this.filters.filter((x) => x.dev === d.name)) this.removeFilter(f);
      d.ingress = false;
    }
    return '';
  }

  private tcFilter(f: FlowerFilter): string {
    // tc/tc_filter.c tc_filter_modify: the device is resolved by tc first
    const d = this.links.get(f.dev);
    if (!d) throw new Mlx5Refusal('iproute2.no-such-device', null, `Cannot find device "${f.dev}"`, 1);
    // net/sched/cls_api.c __tcf_qdisc_find: no ingress qdisc -> "Parent Qdisc doesn't exists", EINVAL
    if (!d.ingress) throw netlinkError('tc.no-parent-qdisc', 'EINVAL', "Parent Qdisc doesn't exists", 'tc');
    const same = this.filters.filter((x) => x.dev === f.dev && x.pref === f.pref);
    const old = same.find((x) => x.handle === f.handle);
    if (f.verb === 'del') {
      // net/sched/cls_api.c tc_del_tfilter: no filter at that prio -> ENOENT; no such handle -> ENOENT
      if (!same.length)
        throw netlinkError('tc.filter-not-found', 'ENOENT', 'Filter with specified priority/protocol not found', 'tc');
      if (!old) throw netlinkError('tc.filter-not-found', 'ENOENT', 'Specified filter handle not found', 'tc');
      this.removeFilter(old);
      return '';
    }
    // net/sched/cls_api.c tc_new_tfilter: "tc filter add" sends NLM_F_EXCL: an existing handle -> "Filter already exists", EEXIST
    if (old && f.verb === 'add') throw netlinkError('tc.filter-exists', 'EEXIST', 'Filter already exists', 'tc');
    if (f.skipSw && f.skipHw) throw new UnmodeledCommand('a filter with both skip_sw and skip_hw');
    const placed = f.skipHw
      ? { pf: undefined, dests: [] as Destination[], viaIpsecTx: false }
      : this.offloadFlower(f, d);
    if ('refusal' in placed) {
      // net/sched/cls_flower.c fl_hw_replace_filter: with skip_sw the driver's error is the filter's; without it the filter stays in software only
      if (f.skipSw) throw placed.refusal;
      this.putFilter(f, old, { pf: undefined, dests: [], viaIpsecTx: false }, false);
      return '';
    }
    this.putFilter(f, old, placed, !f.skipHw);
    return '';
  }

  private putFilter(
    f: FlowerFilter,
    old: FilterState | undefined,
    p: { pf?: string; dests: Destination[]; viaIpsecTx: boolean },
    inHw: boolean,
  ): void {
    if (old) this.removeFilter(old);
    this.filters.push({
      dev: f.dev,
      pref: f.pref,
      handle: f.handle,
      protocol: f.protocol,
      skipSw: f.skipSw,
      inHw,
      ...(p.pf ? { pf: p.pf } : {}),
      dests: p.dests,
      viaIpsecTx: p.viaIpsecTx,
      spec: f,
    });
  }

  private removeFilter(f: FilterState): void {
    this.filters = this.filters.filter((x) => x !== f);
  }

  /** What mlx5 does with a flower filter (en_tc.c mlx5e_configure_flower and the eswitch FDB code). */
  private offloadFlower(
    f: FlowerFilter,
    d: Netdev,
  ): { pf?: string; dests: Destination[]; viaIpsecTx: boolean } | { refusal: Mlx5Refusal } {
    const refuse = (rule: string, errno: 'EOPNOTSUPP' | 'EBUSY' | 'EINVAL', msg?: string) => ({
      refusal: netlinkError(rule, errno, msg, 'tc'),
    });
    // en_tc.c __parse_cls_flower: FLOW_DISSECTOR_KEY_ARP is not among the keys mlx5 matches (to 6.12 and since)
    if (Object.keys(f.match).some((k) => k.startsWith('arp_')))
      return refuse('mlx5.tc.unsupported-key', 'EOPNOTSUPP', mlx5('Unsupported key'));
    let owner: string | undefined;
    if (d.kind === 'rep' || d.kind === 'pf') owner = d.pf!;
    else if (d.kind === 'vxlan')
      owner = undefined; // indirect block: decided by the destinations below
    else throw new UnmodeledCommand(`offloading a filter on the ${d.kind} ${d.name}`);
    if (owner && this.pfs.get(owner)!.eswitch !== 'switchdev')
      throw new UnmodeledCommand(`a flower filter on ${d.name} with its eswitch in legacy mode (NIC flows)`);
    if (d.kind === 'pf' && atLeast(this.kernel, '6.6')) {
      // en_tc.c mlx5e_tc_block_ipsec_offload (c8e350e62fc5, v6.6): no TC rule on a netdev that has IPsec packet offload
      const pf = this.pfs.get(d.name)!;
      if (pf.ipsecTables.rx4 + pf.ipsecTables.rx6 + pf.ipsecTables.tx > 0)
        return refuse('mlx5.tc.ipsec-on-same-netdev', 'EBUSY');
    }
    const dests: Destination[] = [];
    let encap: Extract<FlowerFilter['actions'][number], { kind: 'encap' }> | undefined;
    let decap = false;
    for (const a of f.actions) {
      if (a.kind === 'encap') {
        encap = a;
        continue;
      }
      if (a.kind === 'decap') {
        decap = true;
        continue;
      }
      if (a.kind === 'drop') continue;
      const out = this.links.get(a.dev);
      if (!out) throw new UnmodeledCommand(`mirred to the unknown netdev ${a.dev}`);
      // en/tc/act/mirred.c tc_act_can_offload_mirred: at most MLX5_MAX_FLOW_FWD_VPORTS (32 since 5.16) destinations
      if (dests.length >= 32)
        return refuse(
          'mlx5.tc.max-fwd-dests',
          'EOPNOTSUPP',
          mlx5("can't support more output ports, can't offload forwarding"),
        );
      if (encap) {
        if (out.kind !== 'vxlan') throw new UnmodeledCommand(`an encap to the ${out.kind} ${out.name}`);
        // en/tc_tun_vxlan.c mlx5e_tc_tun_init_encap_attr_vxlan: the UDP port must be known to the NIC; lib/vxlan.c mlx5_vxlan_create pre-registers 4789
        if (encap.dstPort !== 4789)
          throw new UnmodeledCommand(`a VXLAN encap to UDP port ${encap.dstPort} (only 4789 is known registered)`);
        const uplink = this.routeUplink(encap.dst);
        if (!uplink) throw new UnmodeledCommand(`an encap to ${encap.dst}, which no mlx5 uplink of the model routes`);
        if (owner && uplink !== owner) throw new UnmodeledCommand(`an encap from ${owner}'s eswitch out of ${uplink}`);
        owner ??= uplink;
        dests.push({ kind: 'uplink-encap', dev: out.name, pf: uplink });
        encap = undefined;
        continue;
      }
      if (out.kind === 'rep' || out.kind === 'pf') {
        if (owner && out.pf !== owner) throw new UnmodeledCommand(`forwarding across eswitches ${owner} -> ${out.pf}`);
        owner ??= out.pf!;
        dests.push({ kind: 'vport', dev: out.name, pf: out.pf! });
        continue;
      }
      // en/tc/act/mirred.c tc_act_can_offload_mirred: a mirred to a netdev of no eswitch, without encap, on the filter's own device
      if (d.kind !== 'vxlan')
        return refuse(
          'mlx5.tc.mirred-not-same-switch',
          'EOPNOTSUPP',
          mlx5("devices are not on same switch HW, can't offload forwarding"),
        );
      throw new UnmodeledCommand(`an indirect filter forwarding to the ${out.kind} ${out.name}`);
    }
    if (encap) throw new UnmodeledCommand('a tunnel_key set without a mirred after it');
    if (d.kind === 'vxlan') {
      if (!decap) throw new UnmodeledCommand('a filter on a VXLAN device without tunnel_key unset');
      // en/tc_tun.c mlx5e_tc_tun_parse_udp_ports: a VXLAN decap filter must match the full enc_dst_port
      if (f.match.enc_dst_port === undefined)
        return refuse(
          'mlx5.tc.decap-needs-enc-dst-port',
          'EOPNOTSUPP',
          mlx5('VXLAN decap filter must include enc_dst_port condition'),
        );
      // en/tc_tun_vxlan.c mlx5e_tc_tun_check_udp_dport_vxlan: the port must be registered (4789 always is, lib/vxlan.c)
      if (Number(f.match.enc_dst_port) !== 4789)
        throw new UnmodeledCommand(`a decap on UDP port ${f.match.enc_dst_port} (only 4789 is known registered)`);
      if (!owner) throw new UnmodeledCommand('an indirect decap filter without a destination');
    } else if (decap) {
      throw new UnmodeledCommand('tunnel_key unset on a filter outside a tunnel device');
    }
    if (!owner) throw new UnmodeledCommand(`a filter on ${d.name} whose eswitch the model cannot tell`);
    const pf = this.pfs.get(owner)!;
    const ipsecTx = pf.eswitch === 'switchdev' && pf.ipsecTables.tx > 0 && atLeast(this.kernel, '6.6');
    const encapDests = dests.filter((x) => x.kind === 'uplink-encap' && x.pf === owner);
    // eswitch_offloads.c esw_flow_dests_fwd_ipsec_check (d1569537a837, v6.6): with IPsec TX tables, an encap-to-uplink destination
    // must be the rule's only one (split_count is 0: vfwire's rules carry no vlan or header-rewrite actions)
    if (ipsecTx && encapDests.length && dests.length > 1) return refuse('mlx5.tc.ipsec-encap-multi-dest', 'EOPNOTSUPP');
    return { pf: owner, dests, viaIpsecTx: ipsecTx && encapDests.length === 1 };
  }

  /** The mlx5 PF whose underlay subnet holds `dst` (on the PF or on the bond over it). */
  private routeUplink(dst: string): string | undefined {
    for (const l of this.links.values()) {
      if (!l.up) continue;
      for (const cidr of l.addresses) {
        if (!inSubnet(dst, cidr)) continue;
        if (l.kind === 'pf') return l.name;
        if (l.kind === 'bond') return this.activeSlave(l);
      }
    }
    return undefined;
  }

  // ---------------------------------------------------------------- bridge

  private bridge(args: string[]): string {
    const [obj, verb, mac, devKw, dev, dstKw, dst, ...extra] = args;
    if (
      obj !== 'fdb' ||
      (verb !== 'append' && verb !== 'del') ||
      devKw !== 'dev' ||
      dstKw !== 'dst' ||
      extra.length ||
      !mac ||
      !dst
    )
      throw new UnmodeledCommand(`bridge ${args.join(' ')}`);
    const d = this.link(dev);
    if (!d.vxlan) throw new UnmodeledCommand(`bridge fdb on the ${d.kind} ${d.name}`);
    const i = d.vxlan.fdb.findIndex((e) => e.mac === mac && e.dst === dst);
    if (verb === 'append') {
      if (i >= 0) throw new UnmodeledCommand(`appending the fdb entry ${mac} ${dst} twice`);
      d.vxlan.fdb.push({ mac, dst });
    } else {
      if (i < 0) throw new UnmodeledCommand(`deleting the missing fdb entry ${mac} ${dst}`);
      d.vxlan.fdb.splice(i, 1);
    }
    return '';
  }

  // ---------------------------------------------------------------- devlink

  private pfByPci(handle: string | undefined): PfState {
    const pci = handle?.replace(/^pci\//, '');
    const pf = [...this.pfs.values()].find((p) => p.pci === pci);
    if (!pf) throw new UnmodeledCommand(`the devlink handle ${handle}`);
    return pf;
  }

  private devlink(args: string[]): string {
    const a = args.join(' ');
    let m = /^dev eswitch set (\S+) mode (\S+)$/.exec(a);
    if (m) return this.eswitchModeSet(this.pfByPci(m[1]), m[2]!);
    m = /^dev param set (\S+) name flow_steering_mode value (\S+) cmode runtime$/.exec(a);
    if (m) return this.fsModeSet(this.pfByPci(m[1]), m[2]!);
    throw new UnmodeledCommand(`devlink ${a}`);
  }

  private eswitchModeSet(pf: PfState, mode: string): string {
    // eswitch_offloads.c esw_mode_from_devlink: legacy or switchdev (devlink's own parser also knows only these)
    if (mode !== 'legacy' && mode !== 'switchdev') throw new UnmodeledCommand(`eswitch mode ${mode}`);
    // eswitch_offloads.c mlx5_devlink_eswitch_mode_set -> eswitch.c mlx5_esw_try_lock: offloaded TC flows hold the eswitch, EBUSY (5.13, "Protect changing mode while adding rules")
    if (atLeast(this.kernel, '5.13') && this.tcFlows(pf.name) > 0)
      throw devlinkError('mlx5.esw.mode-busy-tc-flows', 'EBUSY', mlx5("Can't change mode, E-Switch is busy"));
    if (pf.eswitch === mode) return '';
    const t = pf.ipsecTables;
    // eswitch_offloads.c mlx5_devlink_eswitch_mode_set: no mode change while IPsec rules exist (366e46242b8e, v6.6)
    if (atLeast(this.kernel, '6.6') && t.rx4 + t.rx6 + t.tx > 0)
      throw devlinkError(
        'mlx5.esw.mode-blocked-by-ipsec',
        'EOPNOTSUPP',
        mlx5("Can't change eswitch mode when IPsec SA and/or policies are configured"),
      );
    // eswitch_offloads.c esw_offloads_start: before "E-switch, Reduce dependency on num_vfs during mode set" (v5.9) switchdev needed SR-IOV on
    if (mode === 'switchdev' && pf.numVfs === 0 && !atLeast(this.kernel, '5.9'))
      throw devlinkError(
        'mlx5.esw.switchdev-needs-sriov-pre-5.9',
        'EINVAL',
        mlx5("Can't set offloads mode, SRIOV legacy not enabled"),
      );
    if (mode === 'legacy') this.destroyReps(pf.name);
    pf.eswitch = mode;
    if (mode === 'switchdev') this.createReps(pf.name);
    this.updateLag();
    return '';
  }

  private fsModeSet(pf: PfState, value: string): string {
    if (atLeast(this.kernel, '6.17') && pf.eswitch === 'switchdev') {
      // fs_core.c mlx5_fs_mode_validate since cf9a8627b9a3 (v6.17, backported to 6.16.y): no steering change at all in switchdev
      throw devlinkError(
        'mlx5.fs-mode.switchdev-locked',
        'EOPNOTSUPP',
        mlx5('Changing fs mode is not supported when eswitch offloads enabled.'),
      );
    }
    if (value === 'dmfs') {
      // fs_core.c mlx5_fs_mode_validate (before cf9a8627b9a3): dmfs is always accepted
      pf.steering = value;
      return '';
    }
    if (value === 'smfs') {
      // fs_core.c mlx5_fs_mode_validate: smfs is refused in switchdev; smfs capability is not modeled
      if (pf.eswitch === 'switchdev')
        throw devlinkError(
          'mlx5.fs-mode.smfs-in-switchdev',
          'EOPNOTSUPP',
          mlx5('Software managed steering is not supported when eswitch offloads enabled.'),
        );
      pf.steering = value;
      return '';
    }
    throw new UnmodeledCommand(`flow_steering_mode ${value}`);
  }

  // ---------------------------------------------------------------- nftables (host, not NIC)

  /**
   * Only the script forms overlay/admission.ts and overlay/rep-guard.ts write, as one transaction: a chain deleted that
   * does not exist fails the whole script (nft: "No such file or directory"), as in nft.
   */
  private nft(args: string[], stdin: string | undefined): string {
    if (args.join(' ') !== '-f -' || stdin === undefined) throw new UnmodeledCommand(`nft ${args.join(' ')}`);
    const next = new Set(this.admission);
    // nft separates commands by newlines and by ';' outside braces (merged scripts: exec/nft-batch.ts).
    for (const raw of stdin.split('\n').flatMap((line) => line.split(/;\s+(?![^{]*})/))) {
      const c = raw.trim();
      if (c === '') continue;
      // inet vfwire: underlay admission; bridge vfwire: the representors' anti-spoofing guard.
      if (!/^(add|flush|delete) (table|map|set|chain|rule|element) (inet|bridge) vfwire\b/.test(c))
        throw new UnmodeledCommand(`the nft command ${JSON.stringify(c)}`);
      const m = /^(add|delete) chain inet vfwire vni_(\d+)$/.exec(c);
      if (!m) continue;
      const vni = Number(m[2]);
      if (m[1] === 'add') next.add(vni);
      else if (!next.delete(vni))
        throw new Mlx5Refusal(
          'nft.no-such-chain',
          'ENOENT',
          `Error: Could not process rule: No such file or directory\n${c}`,
          1,
        );
    }
    this.admission.clear();
    for (const v of next) this.admission.add(v);
    return '';
  }

  // ---------------------------------------------------------------- sysfs

  // ---------------------------------------------------------------- arping

  /**
   * `arping -q -U -c 1 -I DEV ADDR`, the one form vfwire sends: a packet, no NIC state. What
   * iputils arping refuses (seen on a kernel here, exit 2): an unknown device ("Device X not
   * available."), a device down, an address no link holds (bind: EADDRNOTAVAIL).
   */
  private arping(args: string[]): string {
    const m = /^-q -U -c 1 -I (\S+) (\S+)$/.exec(args.join(' '));
    if (!m) throw new UnmodeledCommand(`arping ${args.join(' ')}`);
    const [, dev, address] = m as unknown as [string, string, string];
    const d = this.links.get(dev);
    if (!d) throw new Mlx5Refusal('arping.no-device', null, `arping: Device ${dev} not available.`, 2);
    if (!d.up) throw new Mlx5Refusal('arping.device-down', null, '', 2);
    const held = [...this.links.values()].some((l) => l.addresses.some((c) => c.split('/')[0] === address));
    if (!held) throw new Mlx5Refusal('arping.not-local', null, 'arping: bind: Cannot assign requested address', 2);
    const saDevs = [...new Set(this.states.flatMap((x) => (x.offload ? [x.offload.dev] : [])))].sort();
    this.garps.push({ dev, address, saDevs });
    return '';
  }

  private tee(args: string[], stdin: string | undefined): string {
    const path = args[0];
    if (args.length !== 1 || !path || stdin === undefined) throw new UnmodeledCommand(`tee ${args.join(' ')}`);
    const m = /^(.*)\/class\/net\/([^/]+)\/device\/(sriov_numvfs|sriov_drivers_autoprobe)$/.exec(path);
    if (!m || m[1] !== this.sysfsRoot) throw new UnmodeledCommand(`writing ${path}`);
    const pf = this.pfs.get(m[2]!);
    if (!pf) throw new UnmodeledCommand(`writing ${path} (no such PF in the model)`);
    if (m[3] === 'sriov_drivers_autoprobe') {
      // drivers/pci/iov.c sriov_drivers_autoprobe_store: kstrtobool() failure -> EINVAL
      if (/^[tTfF]/.test(stdin))
        throw new UnmodeledCommand(
          `writing ${JSON.stringify(stdin)} to sriov_drivers_autoprobe (kstrtobool t/f depends on the kernel)`,
        );
      const b = kstrtobool(stdin);
      if (b === undefined) throw teeError('pci.sriov-autoprobe-value', 'EINVAL', path);
      pf.driversAutoprobe = b;
      return stdin;
    }
    if (!/^\d+\n?$/.test(stdin)) throw new UnmodeledCommand(`writing ${JSON.stringify(stdin)} to sriov_numvfs`);
    const n = Number(stdin.trim());
    // drivers/pci/iov.c sriov_numvfs_store: more than sriov_totalvfs -> ERANGE
    if (n > pf.totalVfs) throw teeError('pci.sriov-numvfs-range', 'ERANGE', path);
    // drivers/pci/iov.c sriov_numvfs_store: the same count is a no-op
    if (n === pf.numVfs) return stdin;
    // drivers/pci/iov.c sriov_numvfs_store: "%d VFs already enabled. Disable before enabling %d VFs", EBUSY
    if (n !== 0 && pf.numVfs !== 0) throw teeError('pci.sriov-numvfs-busy', 'EBUSY', path);
    if (n === 0) {
      this.destroyReps(pf.name);
      // eswitch.c mlx5_eswitch_disable_sriov(clear_vf) -> mlx5_eswitch_clear_vf_vports_info: the VFs' settings go with them
      pf.vfs = {};
      pf.numVfs = 0;
    } else {
      pf.numVfs = n;
      for (let i = 0; i < n; i++) pf.vfs[i] = { mac: '00:00:00:00:00:00' };
      if (pf.eswitch === 'switchdev') this.createReps(pf.name);
    }
    this.updateLag();
    return stdin;
  }

  // eswitch_offloads.c esw_offloads_enable / mlx5_eswitch_load_vf_vports: in switchdev each enabled VF has a representor
  private createReps(pf: string): void {
    const p = this.pfs.get(pf)!;
    for (let vf = 0; vf < p.numVfs; vf++) {
      const name = this.repName(pf, vf);
      if (!this.links.has(name))
        this.links.set(name, { name, kind: 'rep', up: false, mtu: DEFAULT_MTU, addresses: [], pf, vf, ingress: false });
    }
  }

  private destroyReps(pf: string): void {
    for (const l of [...this.links.values()]) {
      if (l.kind !== 'rep' || l.pf !== pf) continue;
      for (const f of this.filters.filter((x) => x.dev === l.name || x.dests.some((dd) => dd.dev === l.name)))
        this.removeFilter(f);
      this.links.delete(l.name);
    }
  }
}

// lib/kstrtox.c kstrtobool: first char y/Y/1 or "on" true, n/N/0 or "off" false, else -EINVAL.
// ('t'/'f' were added to kstrtobool later, version not pinned down here: the model does not accept them.)
function kstrtobool(s: string): boolean | undefined {
  const c = s[0];
  if (c === undefined) return undefined;
  if ('yY1'.includes(c)) return true;
  if ('nN0'.includes(c)) return false;
  if (c === 'o' || c === 'O') {
    if (s[1] === 'n' || s[1] === 'N') return true;
    if (s[1] === 'f' || s[1] === 'F') return false;
  }
  return undefined;
}

function ipv4(a: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (!m) return undefined;
  return ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
}

function inSubnet(addr: string, cidr: string): boolean {
  const [net, len] = cidr.split('/');
  const a = ipv4(addr);
  const n = ipv4(net!);
  const l = Number(len ?? 32);
  if (a === undefined || n === undefined) return false;
  const mask = l === 0 ? 0 : (~0 << (32 - l)) >>> 0;
  return (a & mask) === (n & mask);
}
