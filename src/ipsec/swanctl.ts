// IKEv2 mode: strongSwan negotiates and rekeys the SAs that static mode installs by hand. This
// module is pure: it renders swanctl.conf text from templates/swanctl.conf for this host and its
// peers, and decides which `hw_offload` the installed strongSwan can be given. Reading files and
// running strongSwan's tools is in swanctl-charon.ts.
//
// Per peer one IKEv2 connection between the underlay addresses (AES-GCM-16, PRF SHA-256, ECP-256)
// with two ESP transport children (AES-GCM-16 with ESN) that cover exactly the VXLAN traffic
// between the two hosts: see the children's comment in the template for why there are two.
// The host with the lower underlay address initiates as soon as the config is loaded; both
// install trap policies, so VXLAN packets to the peer never leave unencrypted while an SA is
// missing (fail closed) and traffic itself re-triggers a negotiation. strongSwan rekeys each
// CHILD_SA every ipsec.rekey_time (make-before-break: the new SA is in before the old one goes),
// and the new one keeps the child's fixed reqid, so the admission's rules hold across rekeys.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TEMPLATES_DIR } from '../program-files.js';
import { ValidationError } from '../errors.js';
import { VXLAN_PORT } from '../overlay/names.js';
import { inboundReqid, orderPair, outboundReqid } from './sa-ids.js';

/**
 * IKE: AES-GCM-16 128, PRF HMAC-SHA-256, ECDH P-256. On Debian, charon gets ECP-256 (and
 * AES-GCM) from its openssl plugin, in libstrongswan-standard-plugins.
 */
const IKE_PROPOSALS = 'aes128gcm16-prfsha256-ecp256';
/** ESP: AES-GCM-16 128 (rfc4106(gcm(aes)), as in static mode) with extended sequence numbers. */
const ESP_PROPOSALS = 'aes128gcm16-esn';

/**
 * packet: the NIC does all of ESP, policies included (strongSwan >= 5.9.10, Linux >= 6.2);
 * crypto: the NIC only encrypts (`hw_offload = yes`, strongSwan >= 5.5.3);
 * none: the kernel's own ESP on the CPU (`hw_offload = no`), ipsec.offload: none.
 */
export type SwanctlOffload = 'packet' | 'crypto' | 'none';

/** A PSK in a 0600 file, or this host's certificate and key plus the CA that signed the peer's. */
export type PeerAuth = { pskFile: string } | { cert: string; key: string; ca: string };

export interface SwanctlPeer {
  /** Used in connection names: letters, digits, _ and - (strongSwan splits section paths at dots). */
  name: string;
  /** The peer's underlay IPv4 address; also its IKE identity (certificates carry it as subjectAltName). */
  address: string;
  auth: PeerAuth;
}

export interface SwanctlInput {
  /** This host's underlay IPv4 address; also its IKE identity. */
  localAddress: string;
  /** The netdev that holds localAddress: where strongSwan offloads the SAs. */
  uplink: string;
  peers: SwanctlPeer[];
  offload: SwanctlOffload;
  /** Seconds between CHILD_SA rekeys (ipsec.rekey_time). */
  rekeyTime: number;
}

export interface SwanctlConf {
  /** For <swanctl dir>/conf.d/vfwire.conf: the connections. No secret in it. */
  conf: string;
  /**
   * Private keys to link into <swanctl dir>/private/: `swanctl --load-creds` loads private keys
   * only from its own directories (swanctl.conf cannot name a key file). One per distinct key.
   */
  privateKeys: { name: string; target: string }[];
}

export const CONF_FILE = 'conf.d/vfwire.conf';
/** 0600: the PSKs. Also matched by conf.d/*.conf, so `swanctl --load-all` loads it. */
export const SECRETS_FILE = 'conf.d/vfwire-secrets.conf';

/** The connection and child names of a peer, for `swanctl --initiate --child` and `--list-sas`. */
export function swanctlNames(peer: string): { conn: string; out: string; in: string } {
  return { conn: `vfwire-${peer}`, out: `vfwire-${peer}-out`, in: `vfwire-${peer}-in` };
}

export function renderSwanctlConf(input: SwanctlInput): SwanctlConf {
  validateInput(input);
  const t = loadTemplate();
  const local = input.localAddress;
  const common = { local, uplink: input.uplink, vxlanPort: String(VXLAN_PORT) };
  const privateKeys: SwanctlConf['privateKeys'] = [];
  const parts = [fill(t, 'header', common)];
  for (const peer of input.peers) {
    const initiator = orderPair(local, peer.address)[0] === local;
    const childOptions =
      fill(t, 'child-options', {
        espProposals: ESP_PROPOSALS,
        hwOffload: hwOffloadValue(input.offload),
        ...childLifetimes(input.rekeyTime),
        // trap|start (strongSwan >= 5.9.6): trap policies, then initiate at once.
        startAction: initiator ? 'trap|start' : 'trap',
      }) + (initiator ? fill(t, 'child-options-initiator', {}) : '');
    let localAuth: string;
    let remoteAuth: string;
    if ('pskFile' in peer.auth) {
      localAuth = fill(t, 'auth-psk', { id: local });
      remoteAuth = fill(t, 'auth-psk', { id: peer.address });
    } else {
      localAuth = fill(t, 'auth-cert-local', { id: local, cert: peer.auth.cert });
      remoteAuth = fill(t, 'auth-cert-remote', { id: peer.address, ca: peer.auth.ca });
      const target = peer.auth.key;
      // Named after the key's path, so a file keeps its link name whatever the peers' order.
      const name = `vfwire-${createHash('sha256').update(target).digest('hex').slice(0, 12)}.key`;
      if (!privateKeys.some((k) => k.target === target)) privateKeys.push({ name, target });
    }
    parts.push(
      fill(t, 'connection', {
        ...common,
        peer: peer.name,
        remote: peer.address,
        outReqid: String(outboundReqid(local, peer.address)),
        inReqid: String(inboundReqid(local, peer.address)),
        ikeProposals: IKE_PROPOSALS,
        localAuth: localAuth.trimEnd(),
        remoteAuth: remoteAuth.trimEnd(),
        childOptions: childOptions.trimEnd(),
      }),
    );
  }
  parts.push(fill(t, 'footer', {}));
  return { conf: parts.join(''), privateKeys };
}

/**
 * For <swanctl dir>/conf.d/vfwire-secrets.conf (0600): the PSK of each peer that uses one, from
 * `psks` (peer name -> the bytes of its psk_file). undefined when no peer uses a PSK. The key is
 * written base64 (`0s`), so no byte of it can break the file's syntax.
 */
export function renderSwanctlSecrets(input: SwanctlInput, psks: ReadonlyMap<string, Buffer>): string | undefined {
  validateInput(input);
  const pskPeers = input.peers.filter((p) => 'pskFile' in p.auth);
  if (pskPeers.length === 0) return undefined;
  const t = loadTemplate();
  const parts = [fill(t, 'secrets-header', {})];
  for (const peer of pskPeers) {
    const psk = psks.get(peer.name);
    if (!psk || psk.length === 0) throw new ValidationError(`ipsec: no pre-shared key read for peer ${peer.name}`);
    parts.push(
      fill(t, 'secret', {
        peer: peer.name,
        local: input.localAddress,
        remote: peer.address,
        pskBase64: psk.toString('base64'),
      }),
    );
  }
  parts.push(fill(t, 'secrets-footer', {}));
  return parts.join('');
}

/**
 * strongSwan rekeys a child rand_time before rekey_time at the earliest and drops it at
 * life_time. Its defaults (life 110% of rekey, rand the difference: 3960 s and 360 s for an
 * hour) give a short rekey_time almost no time to finish under load, so the old SA gets at least
 * 30 s more; for an hour these are the defaults.
 */
function childLifetimes(rekey: number): { rekeyTime: string; lifeTime: string; randTime: string } {
  const rand = Math.ceil(rekey / 10);
  return { rekeyTime: String(rekey), lifeTime: String(rekey + Math.max(rand, 30)), randTime: String(rand) };
}

function hwOffloadValue(offload: SwanctlOffload): string {
  // `yes` rather than `crypto`: strongSwan < 5.9.10 knows only no/yes/auto, and `yes` still means
  // crypto offload after it (vici_config.c, parse_hw_offload).
  return offload === 'crypto' ? 'yes' : offload === 'none' ? 'no' : offload;
}

// --- strongSwan version and the offload it can be given ------------------------------------

/**
 * `hw_offload = packet` (and `crypto`) appeared in strongSwan 5.9.10 (NEWS: "Added support for
 * full packet hardware offload for IPsec SAs and policies with Linux 6.2 kernels to the
 * kernel-netlink plugin"; commits 55719d7 and 2b8f263, vici: "Update offloading configuration
 * for full packet HW offloading", 2022-12-15). 5.9.8 (Debian 12) refuses the value when the
 * connection is loaded.
 */
const PACKET_OFFLOAD_SINCE = '5.9.10';

/**
 * The strongSwan version in the output of `swanctl --version` ("strongSwan swanctl 5.9.8"),
 * `swanctl --version --daemon` ("strongSwan 5.9.8 charon (Linux, ...)") or `charon --version`
 * ("Linux strongSwan 5.9.8"), as "5.9.8" (a suffix like "rc1" or "dr2" is kept).
 */
export function parseStrongSwanVersion(output: string): string {
  const m = /\bstrongSwan\s+(?:swanctl\s+)?(\d+\.\d+\.\d+(?:[a-z]+\d*)?)\b/.exec(output);
  if (!m)
    throw new ValidationError(
      `cannot find a strongSwan version in "${output.trim().split('\n')[0]?.slice(0, 120) ?? ''}"`,
    );
  return m[1]!;
}

function compareVersions(a: string, b: string): number {
  // Numeric parts only: a release candidate of 5.9.10 already has the feature.
  const n = (v: string) => v.split('.').map((p) => parseInt(p, 10) || 0);
  const [x, y] = [n(a), n(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

export function strongSwanSupportsPacketOffload(version: string): boolean {
  return /^\d+\.\d+\.\d+/.test(version) && compareVersions(version, PACKET_OFFLOAD_SINCE) >= 0;
}

export type OffloadDecision = { offload: SwanctlOffload } | { refused: string };

/** The config's offload mode, if this strongSwan can program it; else a one-line refusal. */
export function chooseOffload(version: string, offload: SwanctlOffload): OffloadDecision {
  if (offload !== 'packet' || strongSwanSupportsPacketOffload(version)) return { offload };
  return {
    refused:
      `strongSwan ${version} cannot program IPsec packet offload (hw_offload = packet needs strongSwan >= ${PACKET_OFFLOAD_SINCE}): ` +
      `upgrade strongSwan, or set ipsec.offload: crypto (the NIC encrypts, the kernel does the rest of ESP)`,
  };
}

// --- input checks and the template -----------------------------------------------------------

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
// Section names: strongSwan reads "connections.<name>.children" as a dotted path.
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
// Values go into swanctl.conf unquoted, certs/cacerts as comma-separated lists.
const PATH = /^\/[A-Za-z0-9._/@+=:-]+$/;

function validateInput(input: SwanctlInput): void {
  const bad = (field: string, why: string): never => {
    throw new ValidationError(`ipsec: ${field}: ${why}`);
  };
  if (!IPV4.test(input.localAddress)) bad('underlay.address', `"${input.localAddress}" must be an IPv4 address`);
  if (!['packet', 'crypto', 'none'].includes(input.offload))
    bad('offload', `"${String(input.offload)}" must be packet, crypto or none`);
  if (!Number.isInteger(input.rekeyTime) || input.rekeyTime < 10)
    bad('rekey_time', `${input.rekeyTime} must be a whole number of seconds, at least 10`);
  const seen = new Set<string>();
  for (const [i, peer] of input.peers.entries()) {
    const at = `peers.${i}`;
    if (!NAME.test(peer.name))
      bad(
        `${at}.name`,
        `"${peer.name}" must be 1-64 of A-Z a-z 0-9 _ - for IKEv2 mode (strongSwan connection names have no dots)`,
      );
    if (!IPV4.test(peer.address)) bad(`${at}.address`, `"${peer.address}" must be an IPv4 address`);
    if (peer.address === input.localAddress)
      bad(`${at}.address`, `${peer.address} is this host's own underlay address`);
    for (const key of [peer.name, peer.address]) {
      if (seen.has(key)) bad(at, `"${key}" is listed twice`);
      seen.add(key);
    }
    const paths =
      'pskFile' in peer.auth
        ? { psk_file: peer.auth.pskFile }
        : { cert: peer.auth.cert, key: peer.auth.key, ca: peer.auth.ca };
    for (const [field, path] of Object.entries(paths)) {
      if (typeof path !== 'string' || !PATH.test(path))
        bad(`${at}.${field}`, `"${String(path)}" must be an absolute path of A-Z a-z 0-9 . _ / @ + = : -`);
    }
  }
}

type Template = Map<string, string>;

let cached: Template | undefined;

function loadTemplate(): Template {
  if (cached) return cached;
  const parts: Template = new Map();
  let name: string | undefined;
  for (const line of readFileSync(join(TEMPLATES_DIR, 'swanctl.conf'), 'utf8').split('\n')) {
    const m = /^#!part (\S+)$/.exec(line);
    if (m) {
      name = m[1]!;
      parts.set(name, '');
    } else if (name !== undefined && !line.startsWith('#!')) {
      parts.set(name, parts.get(name)! + line + '\n');
    }
  }
  // The file ends with a newline: the last part got one empty line too many.
  if (name !== undefined) parts.set(name, parts.get(name)!.replace(/\n\n$/, '\n'));
  cached = parts;
  return parts;
}

function fill(t: Template, part: string, values: Record<string, string>): string {
  const text = t.get(part);
  if (text === undefined) throw new Error(`template swanctl.conf: no part "${part}"`);
  return text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`template swanctl.conf: part ${part}: no value for {{${key}}}`);
    return value;
  });
}
