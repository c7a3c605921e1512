// Static IPsec keys. One file per peer, the same file on both hosts, holds a 256-bit seed; the
// AES-GCM-128 keys (with their 32-bit RFC 4106 salts) of every key epoch are derived from it with
// HKDF-SHA256, one per direction so the two directions never share a nonce space. Both hosts can
// so move to a fresh epoch, never the old nonce space, without talking (see pair-plan.ts). Key
// bytes never leave this module except into the `ip -batch` input on stdin; messages name files,
// never contents.

import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { ValidationError } from '../errors.js';
import { ifExists } from '../fs-absent.js';
import { orderPair } from './sa-ids.js';

/** 16 bytes of key + 4 bytes of salt, as `aead 'rfc4106(gcm(aes))' 0x... 128` takes it. */
const KEY_BYTES = 20;
const SEED_BYTES = 32;
export const MAX_EPOCH = 0xffff;

/** A peer's key file: the seed, and its fingerprint (what the ledger and status may show). */
export interface PeerSeed {
  seed: Buffer;
  id: string;
}

/** The two keys of one epoch. */
export interface PeerKeys {
  /** Fingerprint of the seed they come from: part of the SPIs, so seeds never share an SPI. */
  keyId: string;
  epoch: number;
  /** Sent by the host with the lower underlay address. */
  lowToHigh: Buffer;
  highToLow: Buffer;
}

export function keyFilePath(keyDir: string, peer: string): string {
  return join(keyDir, `${peer}.key`);
}

/** IKEv2's pre-shared key for a peer, beside the static key files (ipsec.peers[].auth may name another). */
export function pskFilePath(keyDir: string, peer: string): string {
  return join(keyDir, `${peer}.psk`);
}

/** A fresh IKEv2 pre-shared key: 48 random bytes, base64, in a 0600 file to copy to the peer. */
export async function writePskFile(path: string): Promise<void> {
  await writeFileAtomic(path, randomBytes(48).toString('base64') + '\n', { mode: 0o600, fsync: true });
}

export function generateSeed(): PeerSeed {
  return seedOf(randomBytes(SEED_BYTES));
}

/**
 * The keys of one epoch between two underlay addresses. The addresses are part of the derivation:
 * a key file copied to a third host, or a host renumbered so the pair's order flips, never gets
 * a key some host already sent with.
 */
export function epochKeys(seed: PeerSeed, epoch: number, pair: readonly [string, string]): PeerKeys {
  if (!Number.isInteger(epoch) || epoch < 1 || epoch > MAX_EPOCH)
    throw new ValidationError(`ipsec: key epoch must be 1..${MAX_EPOCH} (got ${epoch})`);
  const [low, high] = orderPair(...pair);
  const derive = (dir: string) =>
    Buffer.from(hkdfSync('sha256', seed.seed, 'vfwire-esp', `${low} ${high} epoch ${epoch} ${dir}`, KEY_BYTES));
  return { keyId: seed.id, epoch, lowToHigh: derive('low-to-high'), highToLow: derive('high-to-low') };
}

/** What the nonce-reuse guard remembers of an SA: its key's fingerprint and its SPI. */
export function nonceSpaceId(key: Buffer, spi: number): string {
  return `${keyFingerprint(key)}:0x${spi.toString(16).padStart(8, '0')}`;
}

/** Identifies a key without revealing it. */
export function keyFingerprint(key: Buffer): string {
  return createHash('sha256').update('vfwire-key-fingerprint:').update(key).digest('hex').slice(0, 16);
}

export async function writeKeyFile(path: string, peer: string, seed: PeerSeed): Promise<void> {
  const text = [
    `# vfwire static IPsec key shared with peer ${peer}. Secret: keep it 0600, root-owned.`,
    `# Copy it to the peer, named after this host there: <key_dir>/<this host's peer name>.key`,
    `# The keys of every epoch are derived from this seed; fingerprint ${seed.id}.`,
    `seed: 0x${seed.seed.toString('hex')}`,
    '',
  ].join('\n');
  await writeFileAtomic(path, text, { mode: 0o600, fsync: true });
}

export async function readKeyFile(path: string): Promise<PeerSeed> {
  const st = await ifExists(stat(path));
  if (!st)
    throw new ValidationError(
      `no IPsec key file ${path} (create one with: vfwire ipsec keygen --peer NAME, then copy it to the peer)`,
    );
  if ((st.mode & 0o077) !== 0 || st.uid !== process.getuid?.()) {
    throw new ValidationError(
      `IPsec key file ${path} must be owned by this user and 0600 (it is ${(st.mode & 0o777).toString(8)}): chmod 600 ${path}`,
    );
  }
  const fields = new Map<string, string>();
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    const m = /^\s*([a-z_]+):\s*(\S+)\s*$/.exec(line);
    if (m) fields.set(m[1]!, m[2]!);
  }
  const text = fields.get('seed');
  if (text === undefined && fields.has('low_to_high')) {
    throw new ValidationError(
      `IPsec key file ${path} holds fixed keys (an older vfwire's format): make a new one with vfwire ipsec keygen --force and copy it to the peer`,
    );
  }
  // Say what is wrong with the value, never what it is.
  if (!text || !new RegExp(`^0x[0-9a-fA-F]{${SEED_BYTES * 2}}$`).test(text)) {
    throw new ValidationError(`IPsec key file ${path}: seed: must be 0x followed by ${SEED_BYTES * 2} hex digits`);
  }
  return seedOf(Buffer.from(text.slice(2), 'hex'));
}

function seedOf(seed: Buffer): PeerSeed {
  return { seed, id: keyFingerprint(seed) };
}
