// Static IPsec keys, one file per peer, the same file on both hosts. Two AES-GCM-128 keys with
// their 32-bit salts (RFC 4106), one per direction so the two directions never share a nonce
// space, and the epoch they belong to. Key bytes never leave this module except into the
// `ip -batch` input on stdin; messages name files, never contents.

import { randomBytes, createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { ValidationError } from '../errors.js';

/** 16 bytes of key + 4 bytes of salt, as `aead 'rfc4106(gcm(aes))' 0x... 128` takes it. */
export const KEY_BYTES = 20;

export interface PeerKeys {
  epoch: number;
  /** Sent by the host with the lower underlay address. */
  lowToHigh: Buffer;
  highToLow: Buffer;
}

export function keyFilePath(keyDir: string, peer: string): string {
  return join(keyDir, `${peer}.key`);
}

export function generateKeys(epoch: number): PeerKeys {
  return { epoch, lowToHigh: randomBytes(KEY_BYTES), highToLow: randomBytes(KEY_BYTES) };
}

/** What the nonce-reuse guard remembers of an SA: its key's fingerprint and its SPI. */
export function nonceSpaceId(key: Buffer, spi: number): string {
  return `${keyFingerprint(key)}:0x${spi.toString(16).padStart(8, '0')}`;
}

/** Identifies a key without revealing it: what the nonce-reuse guard remembers. */
export function keyFingerprint(key: Buffer): string {
  return createHash('sha256').update('vfwire-key-fingerprint:').update(key).digest('hex').slice(0, 16);
}

export async function writeKeyFile(path: string, peer: string, keys: PeerKeys): Promise<void> {
  const text = [
    `# vfwire static IPsec keys shared with peer ${peer}. Secret: keep it 0600, root-owned.`,
    `# Copy it to the peer, named after this host there: <key_dir>/<this host's peer name>.key`,
    `epoch: ${keys.epoch}`,
    `low_to_high: 0x${keys.lowToHigh.toString('hex')}`,
    `high_to_low: 0x${keys.highToLow.toString('hex')}`,
    '',
  ].join('\n');
  await writeFileAtomic(path, text, { mode: 0o600, fsync: true });
}

export async function readKeyFile(path: string): Promise<PeerKeys> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new ValidationError(`no IPsec key file ${path} (create one with: vfwire ipsec keygen --peer NAME, then copy it to the peer)`, { cause: err });
  }
  if ((st.mode & 0o077) !== 0 || st.uid !== process.getuid?.()) {
    throw new ValidationError(`IPsec key file ${path} must be owned by this user and 0600 (it is ${(st.mode & 0o777).toString(8)}): chmod 600 ${path}`);
  }
  const fields = new Map<string, string>();
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    const m = /^\s*([a-z_]+):\s*(\S+)\s*$/.exec(line);
    if (m) fields.set(m[1]!, m[2]!);
  }
  const epoch = Number(fields.get('epoch'));
  if (!Number.isInteger(epoch) || epoch < 1 || epoch > 0xffff) throw new ValidationError(`IPsec key file ${path}: epoch: must be an integer 1..65535`);
  return { epoch, lowToHigh: parseKey(fields.get('low_to_high'), path, 'low_to_high'), highToLow: parseKey(fields.get('high_to_low'), path, 'high_to_low') };
}

function parseKey(text: string | undefined, path: string, field: string): Buffer {
  // Say what is wrong with the value, never what it is.
  if (!text || !new RegExp(`^0x[0-9a-fA-F]{${KEY_BYTES * 2}}$`).test(text)) {
    throw new ValidationError(`IPsec key file ${path}: ${field}: must be 0x followed by ${KEY_BYTES * 2} hex digits (128-bit key + 32-bit salt)`);
  }
  return Buffer.from(text.slice(2), 'hex');
}
