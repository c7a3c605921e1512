// The config file's schema: every key, its type, its default. Keys are snake_case as in the
// YAML; config.ts turns the result into the camelCase Config the code uses.

import '../zod.js';
import * as z from 'zod';
import { VNI_MAX, VNI_MIN } from '../domain/interface-spec.js';
import { IFNAME_RE } from '../identifiers.js';

// No leading '-': every name ends up in an argv, where it must never read as an option.
const ifname = z
  .string()
  .regex(IFNAME_RE, 'must be a network interface name (1-15 of A-Z a-z 0-9 _ . -, not starting with -)');
const simpleName = z
  .string()
  .regex(/^(?!-)[A-Za-z0-9_.-]{1,64}$/, 'must be a simple name (A-Z a-z 0-9 _ . -, not starting with -)');
const ipv4 = z.ipv4({ message: 'must be an IPv4 address' });
const vni = z.number().int().min(VNI_MIN).max(VNI_MAX);

export const configSchema = z
  .object({
    backend: z.enum(['real', 'sim']).default('real'),
    state_dir: z.string().min(1).default('/var/lib/vfwire'),
    log_dir: z.string().min(1).default('/var/log/vfwire'),
    // The log to syslog/journald too (identifier vfwire): the socket, or false for the file only.
    syslog: z
      .union([z.literal(false), z.string().regex(/^\//, 'an absolute socket path, or false')])
      .default('/dev/log'),
    /** Sim hosts live in a netns; every host command then runs there (`ip -n NS`). */
    netns: simpleName.optional(),
    sysfs_root: z.string().min(1).default('/sys'),
    underlay: z
      .object({
        interface: ifname,
        address: ipv4,
        mtu: z.number().int().min(1280).max(65535).default(9216),
        prefix_len: z.number().int().min(8).max(32).default(24),
        /** Sim only: the netns holding the underlay; VXLAN devices are made there, then moved. */
        netns: simpleName.optional(),
      })
      .strict(),
    vf_mtu: z.number().int().min(68).max(65535).default(9000),
    pfs: z
      .array(
        z
          .object({
            name: ifname,
            /** VF numbers vfwire may lease, e.g. "0-7,12"; default all. */
            vfs: z
              .string()
              .regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/, 'must be a list like "0-7,12"')
              .optional(),
            /** VFs `host setup` enables (default: the firmware's maximum, sriov_totalvfs). */
            num_vfs: z.number().int().min(0).max(1024).optional(),
          })
          .strict(),
      )
      .min(1, 'must list at least one PF'),
    peers: z
      .array(
        z
          .object({
            name: simpleName,
            address: ipv4,
            /** VNIs shared with this peer; default all. */
            vnis: z.array(vni).optional(),
            /** ikev2 authentication: a PSK file (default <key_dir>/<name>.psk) or certificates. */
            auth: z
              .union([
                z.object({ psk_file: z.string().min(1) }).strict(),
                z.object({ cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1) }).strict(),
              ])
              .optional(),
          })
          .strict(),
      )
      .default([]),
    ipsec: z
      .object({
        /** off: no encryption; static: the lab notes' xfrm SAs with keys from key_dir; ikev2: strongSwan. */
        mode: z.enum(['off', 'static', 'ikev2']).default('off'),
        /** static: one 0600 key file per peer, <key_dir>/<peer>.key (vfwire ipsec keygen). */
        key_dir: z.string().min(1).default('/etc/vfwire/keys'),
        /**
         * Who does ESP: packet (the NIC does all of it: xfrm packet offload, the lab notes' mode),
         * crypto (the NIC encrypts, the kernel does the rest) or none (the CPU). Checked at
         * `ipsec up` and by `doctor` against the NIC, the kernel and iproute2.
         */
        offload: z.enum(['packet', 'crypto', 'none']).default('packet'),
        /** Replaced by offload; still read only to say so. */
        allow_software_crypto: z.boolean().optional(),
        /** xfrm policy priority, as in the lab notes. */
        priority: z.number().int().min(0).max(65535).default(12),
        /** Replaced by offload; still read only to say so. */
        allow_crypto_offload: z.boolean().optional(),
        /** ikev2: where swanctl reads its files (vfwire writes conf.d/vfwire*.conf there). */
        swanctl_dir: z.string().min(1).default('/etc/swanctl'),
        /** ikev2: charon's vici socket, when not swanctl's default. */
        vici_uri: z
          .string()
          .regex(/^(unix|tcp):\/\/\S+$/)
          .optional(),
        /** ikev2: seconds between CHILD_SA rekeys (strongSwan's rekey_time); default 3600. */
        rekey_time: z.number().int().min(10).max(86_400).optional(),
      })
      .strict()
      .default({
        mode: 'off',
        key_dir: '/etc/vfwire/keys',
        offload: 'packet',
        priority: 12,
        swanctl_dir: '/etc/swanctl',
      }),
    /**
     * bridge: a VXLAN device and a Linux bridge per VNI (the kernel path, runs anywhere).
     * tc-flower: flower rules the ConnectX offloads (skip_sw) on one external VXLAN device.
     * ovs: one Open vSwitch bridge, vfwire's OpenFlow rules per VNI; on real hosts OVS offloads
     * them to tc (hw-offload), in the sim the kernel datapath runs them.
     */
    overlay: z.enum(['bridge', 'tc-flower', 'ovs']).default('bridge'),
    /**
     * tc-flower's rules, and OVS's tc-policy on a real host: skip_sw (the rules run in the NIC or
     * fail), skip_hw (in the kernel only: any kernel with cls_flower, the lab's), none (the NIC if
     * it takes them, else the kernel).
     */
    tc_policy: z.enum(['skip_sw', 'skip_hw', 'none']).default('skip_sw'),
    /** overlay ovs: the bridge vfwire owns, and where the OVS daemons keep their sockets and database. */
    ovs: z
      .object({
        bridge: ifname.default('vfwovs'),
        /** ovsdb-server's db.sock and the bridges' .mgmt sockets (Debian: /var/run/openvswitch). */
        run_dir: z
          .string()
          .regex(/^\/\S+$/, 'must be an absolute path')
          .default('/var/run/openvswitch'),
        /** The database host setup creates when it starts OVS itself (no systemd; Debian's default path). */
        db_file: z
          .string()
          .regex(/^\/\S+$/, 'must be an absolute path')
          .default('/etc/openvswitch/conf.db'),
      })
      .strict()
      .default({ bridge: 'vfwovs', run_dir: '/var/run/openvswitch', db_file: '/etc/openvswitch/conf.db' }),
    /**
     * active-backup: mlx5 VF LAG, both PFs in an active-backup bond named by underlay.interface
     * (host setup); the kernel fails over. pf-switch: no bond; the underlay address sits on one
     * PF (underlay.interface at first) and `vfwire ipsec watch` moves it, and the SAs on fresh
     * keys, to the other PF when its link goes down: the design that carries packet offload.
     */
    failover: z
      .discriminatedUnion('mode', [
        z
          .object({ mode: z.literal('active-backup'), miimon: z.number().int().min(1).max(10_000).default(100) })
          .strict(),
        z.object({ mode: z.literal('pf-switch') }).strict(),
      ])
      .optional(),
    /** libvirt connection of the attach worker (hooks themselves never call libvirt). */
    libvirt_uri: z.string().min(1).default('qemu:///system'),
    /** When a VF cannot be attached to a started VM: stop the VM (fail closed) or keep it running without. */
    on_attach_failure: z.enum(['stop', 'keep']).default('stop'),
    attach_timeout_ms: z.number().int().min(1000).max(600_000).default(60_000),
    command_timeout_ms: z.number().int().min(100).max(600_000).default(10_000),
    lock_timeout_ms: z.number().int().min(100).max(600_000).default(60_000),
    /** A lock whose holder died is taken over after this long (proper-lockfile's floor: 2000). */
    lock_stale_ms: z.number().int().min(2000).max(600_000).default(10_000),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;
