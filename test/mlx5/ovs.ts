// The Open vSwitch part of the strict host model: ovsdb as ovs-vsctl changes it (one transaction per
// call, all of it or none), ovs-vswitchd's reconfiguration after it (ports opened in the kernel
// datapath, the flow API turned on once), and the OpenFlow tables as `ovs-ofctl --bundle add-flows`
// replaces them. Only the forms vfwire writes are known; any other is UnmodeledCommand. What a
// datapath flow becomes in tc, and whether mlx5 takes it, is ovs-datapath.ts.
//
// Verified against Debian 12's OVS 3.1.0 on this machine (userspace datapath) where noted "(3.1.0)".

import { Mlx5Refusal, UnmodeledCommand } from './refusal.js';
import type { Netdev } from './model.js';
import { parseRule, type OvsRule } from './ovs-rules.js';

export interface OvsFacts {
  /** The daemons' run directory: db.sock and BRIDGE.mgmt are there. */
  runDir: string;
  /** Open_vSwitch other_config as found (e.g. an operator's hw-offload). */
  otherConfig?: Record<string, string>;
}

/** What the OVS model needs of the host's netdevs. */
export interface OvsNetdevs {
  get(name: string): Netdev | undefined;
  /** The datapath's tunnel netdev (vxlan_sys_PORT), made on the first VXLAN port. */
  addTunnelDevice(name: string, dstPort: number): void;
  /** The flow API is on: OVS gives each port netdev an ingress qdisc for its tc rules. */
  ingress(name: string): void;
}

export interface OvsInterface {
  type: string;
  options: Record<string, string>;
  /** -1: ovs-vswitchd could not open it (then `error` says why). */
  ofport: number;
  error?: string;
}

export interface OvsBridge {
  failMode: string;
  datapathType: string;
  ports: Record<string, OvsInterface>;
  rules: OvsRule[];
}

export interface OvsState {
  otherConfig: Record<string, string>;
  /** What ovs-vswitchd read when hw-offload first turned true; null: off. */
  flowApi: { tcPolicy: string } | null;
  bridges: Record<string, OvsBridge>;
  /** What OVS logs or prints without failing. */
  warnings: string[];
}

const vsctlError = (rule: string, msg: string, exit = 1) => new Mlx5Refusal(rule, null, `ovs-vsctl: ${msg}`, exit);

export class OvsModel {
  private s: OvsState;
  private nextOfport = 1;

  constructor(
    private readonly facts: OvsFacts,
    private readonly netdevs: OvsNetdevs,
  ) {
    this.s = { otherConfig: { ...facts.otherConfig }, flowApi: null, bridges: {}, warnings: [] };
    this.reconfigure();
  }

  state(): OvsState {
    return structuredClone(this.s);
  }

  /** The bridge that has this port, if any. */
  bridgeOf(port: string): [string, OvsBridge] | undefined {
    return Object.entries(this.s.bridges).find(([, b]) => port in b.ports);
  }

  // ---------------------------------------------------------------- ovs-vsctl

  /** argv after "ovs-vsctl". */
  vsctl(argv: string[]): string {
    let i = 0;
    for (; i < argv.length && argv[i]!.startsWith('--') && argv[i] !== '--'; i++) {
      const [opt, value] = argv[i]!.split('=', 2) as [string, string | undefined];
      if (opt === '--db') {
        // lib/stream-unix.c: a socket path nobody serves fails the connect (3.1.0: "database connection failed")
        if (value !== `unix:${this.facts.runDir}/db.sock`)
          throw vsctlError('ovs.vsctl.no-database', `${value}: database connection failed (No such file or directory)`);
      } else if (opt === '--timeout' && /^\d+$/.test(value ?? '')) continue;
      else if (opt === '--may-exist' || opt === '--if-exists') break;
      else throw new UnmodeledCommand(`ovs-vsctl option ${argv[i]}`);
    }
    if (!argv.some((a) => a.startsWith('--db=')))
      throw new UnmodeledCommand('ovs-vsctl without --db (vfwire names its socket)');
    const groups: string[][] = [[]];
    for (const a of argv.slice(i)) {
      if (a === '--') groups.push([]);
      else groups.at(-1)!.push(a);
    }
    // utilities/ovs-vsctl.c do_vsctl: every command runs in one ovsdb transaction, committed only if all ran
    const before = structuredClone(this.s);
    const out: string[] = [];
    try {
      for (const g of groups.filter((x) => x.length)) out.push(this.command(g));
    } catch (e) {
      this.s = before;
      throw e;
    }
    this.reconfigure();
    return out.join('');
  }

  private command(words: string[]): string {
    const opts = new Set<string>();
    let k = 0;
    while (words[k]?.startsWith('--')) opts.add(words[k++]!);
    const [name, ...args] = words.slice(k);
    for (const o of opts)
      if (!['--may-exist', '--if-exists'].includes(o)) throw new UnmodeledCommand(`ovs-vsctl ${o} ${name}`);
    const br = (n: string | undefined) => {
      const b = n === undefined ? undefined : this.s.bridges[n];
      // utilities/ovs-vsctl.c find_bridge(must_exist)
      if (!b) throw vsctlError('ovs.vsctl.no-bridge', `no bridge named ${n}`);
      return b;
    };
    switch (name) {
      case 'br-exists':
        // utilities/ovs-vsctl.c cmd_br_exists: vsctl_exit(2) when there is none, silently
        if (!this.s.bridges[args[0]!]) throw new Mlx5Refusal('ovs.vsctl.br-exists', null, '', 2);
        return '';
      case 'add-br': {
        const n = args[0]!;
        if (args.length !== 1) throw new UnmodeledCommand('ovs-vsctl add-br with a parent or VLAN (a fake bridge)');
        if (this.s.bridges[n]) {
          // utilities/ovs-vsctl.c cmd_add_br: an existing bridge without --may-exist
          if (!opts.has('--may-exist'))
            throw vsctlError(
              'ovs.vsctl.bridge-exists',
              `cannot create a bridge named ${n} because a bridge named ${n} already exists`,
            );
          return '';
        }
        if (this.bridgeOf(n)) throw vsctlError('ovs.vsctl.port-exists', `cannot create a bridge named ${n}`);
        this.s.bridges[n] = { failMode: '', datapathType: '', ports: {}, rules: [] };
        return '';
      }
      case 'del-br': {
        if (!this.s.bridges[args[0]!]) {
          if (opts.has('--if-exists')) return '';
          br(args[0]);
        }
        delete this.s.bridges[args[0]!];
        return '';
      }
      case 'add-port': {
        const [b, p, ...cols] = args;
        if (cols.length) throw new UnmodeledCommand('ovs-vsctl add-port with columns (vfwire sets them with `-- set`)');
        const bridge = br(b);
        const on = this.bridgeOf(p!);
        if (on) {
          // utilities/ovs-vsctl.c cmd_add_port -> add_port: --may-exist accepts the port only on the bridge named
          if (opts.has('--may-exist') && on[0] === b) return '';
          throw vsctlError(
            'ovs.vsctl.port-exists',
            opts.has('--may-exist')
              ? `"--may-exist add-port ${b} ${p}" but ${p} is actually attached to bridge ${on[0]}`
              : `cannot create a port named ${p} because a port named ${p} already exists on bridge ${on[0]}`,
          );
        }
        bridge.ports[p!] = { type: '', options: {}, ofport: 0 };
        return '';
      }
      case 'del-port': {
        const [b, p] = args.length === 2 ? args : [undefined, args[0]];
        const on = this.bridgeOf(p!);
        if (!on || (b !== undefined && on[0] !== b)) {
          if (opts.has('--if-exists')) return '';
          // utilities/ovs-vsctl.c cmd_del_port
          throw vsctlError('ovs.vsctl.no-port', on ? `bridge ${b} does not have a port ${p}` : `no port named ${p}`);
        }
        delete on[1].ports[p!];
        return '';
      }
      case 'set':
        return this.set(args);
      case 'clear': {
        const [table, rec, col] = args;
        if (table !== 'Interface' || col !== 'options' || args.length !== 3)
          throw new UnmodeledCommand(`ovs-vsctl clear ${args.join(' ')}`);
        this.iface(rec!).options = {};
        return '';
      }
      case 'remove': {
        const [table, rec, col, ...keys] = args;
        if (table !== 'Open_vSwitch' || rec !== '.' || col !== 'other_config')
          throw new UnmodeledCommand(`ovs-vsctl remove ${args.join(' ')}`);
        for (const key of keys) delete this.s.otherConfig[key];
        return '';
      }
      case 'set-fail-mode':
        if (!['secure', 'standalone'].includes(args[1]!)) throw new UnmodeledCommand(`fail mode ${args[1]}`);
        br(args[0]).failMode = args[1]!;
        return '';
      case 'del-fail-mode':
        br(args[0]).failMode = '';
        return '';
      case 'wait-until':
        return this.waitUntil(args);
      default:
        throw new UnmodeledCommand(`ovs-vsctl ${name}`);
    }
  }

  private iface(name: string): OvsInterface {
    const on = this.bridgeOf(name);
    // lib/db-ctl-base.c ctl_get_row (must_exist)
    if (!on) throw vsctlError('ovs.vsctl.no-row', `no row "${name}" in table Interface`);
    return on[1].ports[name]!;
  }

  private set(args: string[]): string {
    const [table, rec, ...cols] = args;
    for (const c of cols) {
      const m = /^([a-z_]+)(?::([a-z_-]+))?=(.*)$/.exec(c);
      if (!m) throw new UnmodeledCommand(`ovs-vsctl set ${table} ${rec} ${c}`);
      const [, col, key, value] = m as unknown as [string, string, string | undefined, string];
      if (table === 'Open_vSwitch' && rec === '.' && col === 'other_config' && key) this.s.otherConfig[key] = value;
      else if (table === 'Bridge' && !key && col === 'fail_mode' && ['secure', 'standalone'].includes(value)) {
        const b = this.s.bridges[rec!];
        if (!b) throw vsctlError('ovs.vsctl.no-row', `no row "${rec}" in table Bridge`);
        b.failMode = value;
      } else if (table === 'Interface' && col === 'type' && !key) this.iface(rec!).type = value;
      else if (table === 'Interface' && col === 'options' && key) this.iface(rec!).options[key] = value;
      else throw new UnmodeledCommand(`ovs-vsctl set ${table} ${rec} ${c}`);
    }
    return '';
  }

  private waitUntil(args: string[]): string {
    const [table, rec, ...conds] = args;
    if (table !== 'Interface' || conds.length !== 1 || conds[0] !== 'ofport>0')
      throw new UnmodeledCommand(`ovs-vsctl wait-until ${args.join(' ')}`);
    const on = this.bridgeOf(rec!);
    if (on && on[1].ports[rec!]!.ofport > 0) return '';
    // lib/db-ctl-base.c cmd_wait_until retries until --timeout, then SIGALRM (3.1.0: exit 142)
    throw new Mlx5Refusal(
      'ovs.vsctl.wait-timeout',
      null,
      'fatal_signal|WARN|terminating with signal 14 (Alarm clock)',
      142,
    );
  }

  /** ovs-vswitchd after a committed change (vswitchd/bridge.c bridge_reconfigure). */
  private reconfigure(): void {
    const oc = this.s.otherConfig;
    if (oc['hw-offload'] === 'true' && !this.s.flowApi) {
      // lib/netdev-offload.c netdev_set_flow_api_enabled: once, on the first true; tc-policy is read then (netdev_tc_init_flow_api, tc_set_policy)
      this.s.flowApi = { tcPolicy: oc['tc-policy'] ?? 'none' };
    } else if (
      this.s.flowApi &&
      (oc['hw-offload'] !== 'true' || (oc['tc-policy'] ?? 'none') !== this.s.flowApi.tcPolicy)
    ) {
      const w =
        'hw-offload or tc-policy changed while the flow API is on: ovs-vswitchd applies it only after a restart';
      if (!this.s.warnings.includes(w)) this.s.warnings.push(w);
    }
    for (const [brName, b] of Object.entries(this.s.bridges)) {
      if (b.datapathType && b.datapathType !== 'system') throw new UnmodeledCommand(`datapath_type ${b.datapathType}`);
      for (const [name, i] of Object.entries(b.ports)) {
        if (i.ofport === 0) this.open(brName, name, i);
        if (this.s.flowApi && i.ofport > 0) this.netdevs.ingress(this.datapathDevice(name, i));
      }
    }
  }

  /** The netdev a port's datapath flows are on: itself, or the tunnel type's one device. */
  datapathDevice(port: string, i: OvsInterface): string {
    // lib/netdev-vport.c netdev_vport_get_dpif_port: TYPE_sys_DSTPORT
    return i.type === 'vxlan' ? `vxlan_sys_${i.options['dst_port'] ?? '4789'}` : port;
  }

  private open(brName: string, name: string, i: OvsInterface): void {
    const fail = (error: string) => {
      i.ofport = -1;
      i.error = error;
      // utilities/ovs-vsctl.c post_db_reload_do_checks: a warning on stderr, exit status 0 (3.1.0)
      this.s.warnings.push(`ovs-vsctl: Error detected while setting up '${name}': ${error}.`);
    };
    if (i.type === 'vxlan') {
      for (const k of Object.keys(i.options))
        if (!['remote_ip', 'key', 'local_ip', 'dst_port'].includes(k)) throw new UnmodeledCommand(`VXLAN option ${k}`);
      // lib/dpif-netlink-rtnl.c dpif_netlink_rtnl_port_create: a collect-metadata vxlan netdev per UDP port
      this.netdevs.addTunnelDevice(this.datapathDevice(name, i), Number(i.options['dst_port'] ?? 4789));
      i.ofport = this.nextOfport++;
      return;
    }
    if (i.type !== '' && i.type !== 'system') throw new UnmodeledCommand(`an OVS port of type ${i.type}`);
    const d = this.netdevs.get(name);
    // lib/netdev-linux.c: the device must exist in ovs-vswitchd's netns (3.1.0: "could not open network device X (No such device)")
    if (!d) return fail(`could not open network device ${name} (No such device)`);
    // net/openvswitch/vport-netdev.c ovs_netdev_link: netdev_rx_handler_register -EBUSY on a bridge or bond port
    if (d.master) return fail(`could not add network device ${name} to ofproto (Device or resource busy)`);
    if (d.kind !== 'rep') throw new UnmodeledCommand(`an OVS port on the ${d.kind} ${name} (vfwire adds representors)`);
    void brName;
    i.ofport = this.nextOfport++;
  }

  // ---------------------------------------------------------------- ovs-ofctl

  /** argv after "ovs-ofctl". */
  ofctl(argv: string[], stdin: string | undefined): string {
    const [o, version, bundle, verb, target, file, ...extra] = argv;
    if (
      o !== '-O' ||
      version !== 'OpenFlow14' ||
      bundle !== '--bundle' ||
      verb !== 'add-flows' ||
      file !== '-' ||
      extra.length
    )
      throw new UnmodeledCommand(`ovs-ofctl ${argv.join(' ')}`);
    const entry = Object.entries(this.s.bridges).find(([n]) => target === `unix:${this.facts.runDir}/${n}.mgmt`);
    // lib/stream-unix.c: the bridge's mgmt socket exists only while the bridge does (3.1.0)
    if (!entry)
      throw new Mlx5Refusal(
        'ovs.ofctl.no-bridge',
        null,
        `ovs-ofctl: connecting to ${target} (No such file or directory)`,
        1,
      );
    const [, b] = entry;
    const ofports = new Set(
      Object.entries(b.ports)
        .filter(([, i]) => i.ofport > 0)
        .map(([n]) => n),
    );
    let rules = [...b.rules];
    // ovs-ofctl(8) --bundle: the whole file in one OpenFlow 1.4 bundle, committed only if every flow_mod is valid
    (stdin ?? '').split('\n').forEach((line, n) => {
      if (!line.trim()) return;
      const del = /^delete cookie=(0x[0-9a-f]+)\/-1$/.exec(line);
      if (del) {
        rules = rules.filter((r) => r.cookie !== Number(del[1]));
        return;
      }
      if (!line.startsWith('add ')) throw new UnmodeledCommand(`an OpenFlow line ${JSON.stringify(line)}`);
      const rule = parseRule(line.slice(4));
      const where = `ovs-ofctl: -:${n + 1}:`;
      // lib/meta-flow.c mf_from_ofp_port_string: a name that is no OpenFlow port of the bridge (ofport -1 included) (3.1.0)
      if (rule.match['in_port'] !== undefined && !ofports.has(rule.match['in_port']))
        throw new Mlx5Refusal(
          'ovs.ofctl.unknown-port',
          null,
          `${where} ${rule.match['in_port']}: invalid or unknown port for in_port`,
          1,
        );
      for (const a of rule.actions)
        // lib/ofp-actions.c parse_OUTPUT (3.1.0)
        if (a.kind === 'output' && !ofports.has(a.port))
          throw new Mlx5Refusal('ovs.ofctl.unknown-port', null, `${where} ${a.port}: output to unknown port`, 1);
      rules = rules.filter((r) => !(r.table === rule.table && r.priority === rule.priority && sameMatch(r, rule)));
      rules.push(rule);
    });
    b.rules = rules;
    return '';
  }
}

const sameMatch = (a: OvsRule, b: OvsRule) => JSON.stringify(a.match) === JSON.stringify(b.match);
