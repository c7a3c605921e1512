// Load and validate /etc/vfwire/config.yaml once; the rest of the code reads only `Config`.

import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ValidationError } from '../errors.js';
import { checkOvsLimits } from './ovs-limits.js';
import { configSchema, type RawConfig } from './schema.js';

export const DEFAULT_CONFIG_PATH = '/etc/vfwire/config.yaml';

export interface PeerConfig {
  name: string;
  address: string;
  /** undefined: every VNI */
  vnis?: number[];
  /** ikev2 only; undefined: a PSK in <key_dir>/<name>.psk */
  auth?: { psk_file: string } | { cert: string; key: string; ca: string };
}

export interface PfConfig {
  name: string;
  /** VFs host setup enables; undefined: sriov_totalvfs. */
  numVfs?: number;
  /** undefined: every VF of the PF */
  vfs?: Set<number>;
}

export interface Config {
  path: string;
  backend: 'real' | 'sim';
  stateDir: string;
  logDir: string;
  /** Syslog socket the log goes to as well; false: the file only. */
  syslog: string | false;
  netns?: string;
  sysfsRoot: string;
  underlay: { interface: string; address: string; mtu: number; prefixLen: number; netns?: string };
  failover?: { mode: 'active-backup'; miimon: number } | { mode: 'pf-switch' };
  overlay: 'bridge' | 'tc-flower' | 'ovs';
  ovs: { bridge: string; runDir: string; dbFile: string };
  tcPolicy: 'skip_sw' | 'skip_hw' | 'none';
  vfMtu: number;
  pfs: PfConfig[];
  peers: PeerConfig[];
  ipsec: {
    mode: 'off' | 'static' | 'ikev2';
    keyDir: string;
    offload: 'packet' | 'crypto' | 'none';
    priority: number;
    swanctlDir: string;
    viciUri?: string;
    rekeyTime: number;
  };
  libvirtUri: string;
  onAttachFailure: 'stop' | 'keep';
  attachTimeoutMs: number;
  commandTimeoutMs: number;
  lockTimeoutMs: number;
  lockStaleMs: number;
}

/** How a process of this config takes the ledger lock (ledger/store.ts withLedger's options). */
export function lockOptions(cfg: Pick<Config, 'lockTimeoutMs' | 'lockStaleMs'>): {
  timeoutMs: number;
  staleMs: number;
} {
  return { timeoutMs: cfg.lockTimeoutMs, staleMs: cfg.lockStaleMs };
}

/** Where the underlay (and the uplink doing IPsec) lives: its own netns, else the host's. */
export function underlayNetns(cfg: Pick<Config, 'netns' | 'underlay'>): string | undefined {
  return cfg.underlay.netns ?? cfg.netns;
}

/**
 * Where the VXLAN devices' UDP socket lives, and so their admission (overlay/admission.ts): a
 * bridge VNI's device is made beside the underlay; tc-flower's one external device where its
 * rules are; OVS's datapath device in ovs-vswitchd's netns, the representors'.
 */
export function vxlanSocketNetns(cfg: Pick<Config, 'netns' | 'underlay' | 'overlay'>): string | undefined {
  return cfg.overlay === 'bridge' ? underlayNetns(cfg) : cfg.netns;
}

/** The config path: --config, then $VFWIRE_CONFIG, then the default. */
/** The configured peer of that name, or one error naming the ones there are. */
export function peerNamed(cfg: Pick<Config, 'peers' | 'path'>, name: string): PeerConfig {
  const peer = cfg.peers.find((p) => p.name === name);
  if (peer) return peer;
  const have = cfg.peers.map((p) => p.name).join(', ') || 'none';
  throw new ValidationError(`--peer: no peer "${name}" in ${cfg.path} (have: ${have})`);
}

export function configPath(flag?: string): string {
  return flag ?? process.env.VFWIRE_CONFIG ?? DEFAULT_CONFIG_PATH;
}

export async function loadConfig(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const hint =
      (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? ' (copy templates/config.example.yaml there, or pass --config)'
        : '';
    throw new ValidationError(`cannot read config ${path}${hint}`, { cause: err });
  }
  return parseConfig(text, path);
}

export function parseConfig(text: string, path = '<config>'): Config {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 16 });
  } catch (err) {
    throw new ValidationError(`config ${path}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = configSchema.safeParse(doc ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.') || '(top level)';
    throw new ValidationError(`config ${path}: ${field}: ${issue.message}`);
  }
  return normalize(parsed.data, path);
}

function normalize(raw: RawConfig, path: string): Config {
  const pfs = raw.pfs.map((pf, i) => ({
    name: pf.name,
    numVfs: pf.num_vfs,
    vfs: pf.vfs === undefined ? undefined : parseRange(pf.vfs, `pfs.${i}.vfs`, path),
  }));
  const dup =
    firstDuplicate(pfs.map((p) => p.name)) ??
    firstDuplicate(raw.peers.map((p) => p.name)) ??
    firstDuplicate(raw.peers.map((p) => p.address));
  if (dup) throw new ValidationError(`config ${path}: "${dup}" is listed twice`);
  const dotted = raw.ipsec.mode === 'ikev2' && raw.peers.find((p) => p.name.includes('.'));
  if (dotted)
    throw new ValidationError(
      `config ${path}: peers: "${dotted.name}": with ipsec.mode ikev2 a peer name may not contain dots (strongSwan reads them as section paths)`,
    );
  if (raw.peers.some((p) => p.address === raw.underlay.address)) {
    throw new ValidationError(
      `config ${path}: peers: a peer has this host's own underlay address ${raw.underlay.address}`,
    );
  }
  // The two old switches said what the offload mode now says; a silent default could weaken it.
  if (raw.ipsec.allow_software_crypto !== undefined)
    throw new ValidationError(
      `config ${path}: ipsec.allow_software_crypto was replaced by ipsec.offload: set offload: none for CPU crypto (or crypto, packet) and remove it`,
    );
  if (raw.ipsec.allow_crypto_offload !== undefined)
    throw new ValidationError(
      `config ${path}: ipsec.allow_crypto_offload was replaced by ipsec.offload: set offload: crypto (or packet, none) and remove it`,
    );
  if (raw.ipsec.rekey_time !== undefined && raw.ipsec.mode !== 'ikev2') {
    throw new ValidationError(
      `config ${path}: ipsec.rekey_time is strongSwan's (ipsec.mode: ikev2); static SAs get new keys by \`vfwire ipsec rotate\`, so remove it`,
    );
  }
  // A skip_sw rule's encap runs in the eswitch: the packet goes from the VF to the uplink port and
  // never meets the kernel's xfrm, so only SAs in the NIC can encrypt it: mlx5 steers such encap
  // through its IPsec TX tables only in packet mode (eswitch_offloads.c esw_setup_dest_fwd_ipsec).
  // Rules the kernel runs itself (skip_hw) encapsulate through its own VXLAN device and xfrm.
  if (
    raw.overlay === 'tc-flower' &&
    raw.tc_policy !== 'skip_hw' &&
    raw.ipsec.mode !== 'off' &&
    raw.ipsec.offload !== 'packet'
  ) {
    throw new ValidationError(
      `config ${path}: overlay tc-flower with ipsec.offload ${raw.ipsec.offload}: the eswitch encapsulates VXLAN past the kernel's xfrm, so it would leave in clear; use ipsec.offload: packet, tc_policy: skip_hw (the kernel runs the rules), or overlay: bridge`,
    );
  }
  // VF LAG puts the SAs on the bond, which can carry neither offload mode:
  // - packet: bonding has no policy offload (drivers/net/bonding/bond_main.c bond_xfrmdev_ops lacks
  //   xdo_dev_policy_add, so net/xfrm/xfrm_device.c xfrm_dev_policy_add fails: "Policy offload is
  //   not supported"), and mlx5 does not support packet offload with LAG (bdf788cf224f);
  // - crypto: a failover moves the SAs by delete and re-add on the new port
  //   (bond_ipsec_del_sa_all/bond_ipsec_add_sa_all), and a packet sent in between can leave in
  //   clear; and before 6.12 bonding refuses ESN offload (no xdo_dev_state_advance_esn: 96d30bf94109).
  // The CPU's ESP on the bond (offload: none) is the kernel's own path and follows the active port.
  if (raw.failover?.mode === 'active-backup' && raw.ipsec.mode !== 'off' && raw.ipsec.offload !== 'none') {
    const why =
      raw.ipsec.offload === 'packet'
        ? 'bonding cannot offload xfrm policies and mlx5 has no packet offload with VF LAG'
        : 'a failover re-adds the SAs on the new port, and packets sent meanwhile can leave in clear';
    throw new ValidationError(
      `config ${path}: failover (VF LAG) with ipsec.offload ${raw.ipsec.offload}: ${why}; use ipsec.offload: none (the CPU's ESP on the bond), failover mode pf-switch, or no failover`,
    );
  }
  if (raw.failover?.mode === 'pf-switch') {
    const names = raw.pfs.map((p) => p.name);
    const refuse = (why: string) => new ValidationError(`config ${path}: failover pf-switch: ${why}`);
    if (names.length !== 2) throw refuse(`moves the underlay between the NIC's two PFs; pfs lists ${names.length}`);
    if (!names.includes(raw.underlay.interface))
      throw refuse(
        `underlay.interface must be the PF that holds the address first (one of ${names.join(', ')}), not ${raw.underlay.interface}`,
      );
    // The move is ipsec watch's: it re-homes the SAs with the address.
    if (raw.ipsec.mode !== 'static')
      throw refuse(
        `the move is \`vfwire ipsec watch\`'s, with static keys (strongSwan keeps an offloaded SA on the netdev it was installed on); use ipsec.mode: static, or failover mode active-backup`,
      );
    // A VF's traffic in the eswitch leaves only through its own PF's uplink: forwarding to the
    // other port's uplink needs LAG or a multiport eswitch (en_tc.c mlx5e_is_valid_eswitch_fwd_dev).
    if (raw.overlay !== 'bridge')
      throw refuse(
        `overlay ${raw.overlay}: the eswitch forwards a VF only to its own PF's uplink, never the other port's without VF LAG; use overlay: bridge (the kernel routes VXLAN out of either PF)`,
      );
  }
  // The NIC's IPsec tables must exist before any tc rule and outlive them (ipsec/tc-order.ts);
  // vfwire orders its own SA installs around the rules, but not strongSwan's.
  if (raw.overlay === 'tc-flower' && raw.ipsec.mode === 'ikev2') {
    throw new ValidationError(
      `config ${path}: overlay tc-flower with ipsec.mode ikev2: mlx5 refuses the first SA while tc rules are offloaded and sends their VXLAN in clear once the last SA and policy are gone (a charon restart does both), and strongSwan installs SAs on its own schedule; use ipsec.mode: static, or overlay: bridge`,
    );
  }
  checkOvsLimits(raw, path);
  return {
    path,
    backend: raw.backend,
    stateDir: raw.state_dir,
    logDir: raw.log_dir,
    syslog: raw.syslog,
    netns: raw.netns,
    sysfsRoot: raw.sysfs_root,
    underlay: {
      interface: raw.underlay.interface,
      address: raw.underlay.address,
      mtu: raw.underlay.mtu,
      prefixLen: raw.underlay.prefix_len,
      netns: raw.underlay.netns,
    },
    failover: raw.failover,
    overlay: raw.overlay,
    ovs: { bridge: raw.ovs.bridge, runDir: raw.ovs.run_dir, dbFile: raw.ovs.db_file },
    tcPolicy: raw.tc_policy,
    vfMtu: raw.vf_mtu,
    pfs,
    peers: raw.peers,
    ipsec: {
      mode: raw.ipsec.mode,
      keyDir: raw.ipsec.key_dir,
      offload: raw.ipsec.offload,
      priority: raw.ipsec.priority,
      swanctlDir: raw.ipsec.swanctl_dir,
      viciUri: raw.ipsec.vici_uri,
      rekeyTime: raw.ipsec.rekey_time ?? DEFAULT_REKEY_TIME,
    },
    libvirtUri: raw.libvirt_uri,
    onAttachFailure: raw.on_attach_failure,
    attachTimeoutMs: raw.attach_timeout_ms,
    commandTimeoutMs: raw.command_timeout_ms,
    lockTimeoutMs: raw.lock_timeout_ms,
    lockStaleMs: raw.lock_stale_ms,
  };
}

/** strongSwan's own default rekey_time for a CHILD_SA: one hour. */
const DEFAULT_REKEY_TIME = 3600;

function parseRange(spec: string, field: string, path: string): Set<number> {
  const out = new Set<number>();
  for (const part of spec.split(',')) {
    const [lo, hi = lo] = part.split('-').map(Number) as [number, number?];
    if (hi! < lo || hi! > 1023) throw new ValidationError(`config ${path}: ${field}: bad range "${part}"`);
    for (let n = lo; n <= hi!; n++) out.add(n);
  }
  return out;
}

function firstDuplicate(names: string[]): string | undefined {
  return names.find((n, i) => names.indexOf(n) !== i);
}
