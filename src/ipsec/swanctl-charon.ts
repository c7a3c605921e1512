// IKEv2 mode's side of the world: which strongSwan is installed or running, the PSK files, and
// putting vfwire's files where `swanctl --load-all` finds them. The text itself comes from the
// pure swanctl.ts. PSK bytes never leave this module except into the 0600 secrets file; messages
// name files, never contents.

import { lstat, mkdir, readdir, readFile, stat, symlink, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { ValidationError } from '../errors.js';
import { ifExists } from '../fs-absent.js';
import { ExecRunner, type Runner } from '../exec/runner.js';
import { CONF_FILE, parseStrongSwanVersion, SECRETS_FILE, type SwanctlConf, type SwanctlInput } from './swanctl.js';

const DEFAULT_SWANCTL_DIR = '/etc/swanctl';
/** Where distributions put the IKE daemon (Debian: strongswan-charon). */
const CHARON_PATHS = ['/usr/lib/ipsec/charon', '/usr/libexec/ipsec/charon', '/usr/libexec/strongswan/charon'];
/** A PSK shorter than this is refused: IKEv2 PSKs are only as strong as they are long and random. */
const PSK_MIN_BYTES = 32;

export interface StrongSwanVersionInfo {
  version: string;
  /** daemon: the running charon (what will parse the config); charon: the installed binary. */
  from: 'daemon' | 'charon';
}

/**
 * The strongSwan that will read vfwire's config: the running daemon's version over vici
 * (`swanctl --version --daemon`), or, with no daemon running, the installed charon's.
 */
export async function readStrongSwanVersion(
  opts: { runner?: Runner; uri?: string; charonPaths?: string[] } = {},
): Promise<StrongSwanVersionInfo> {
  const runner = opts.runner ?? new ExecRunner();
  const errors: string[] = [];
  try {
    const res = await runner.run({ argv: ['swanctl', '--version', '--daemon', ...uriArgs(opts.uri)] });
    return { version: parseStrongSwanVersion(res.stdout), from: 'daemon' };
  } catch (err) {
    errors.push((err as Error).message);
  }
  for (const charon of opts.charonPaths ?? CHARON_PATHS) {
    if (!(await exists(charon))) continue;
    try {
      // charon prints its version on stdout and exits; plugin warnings go to stderr.
      const res = await runner.run({ argv: [charon, '--version'] });
      return { version: parseStrongSwanVersion(res.stdout), from: 'charon' };
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  throw new ValidationError(
    `ipsec: cannot tell which strongSwan is installed (${errors.join('; ') || `no charon in ${(opts.charonPaths ?? CHARON_PATHS).join(', ')}`}): ` +
      'install strongswan-charon, strongswan-swanctl and libstrongswan-standard-plugins',
  );
}

/** A peer's pre-shared key: the file's bytes, less one trailing newline. The file must be 0600 and ours. */
export async function readPskFile(path: string, peer: string): Promise<Buffer> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new ValidationError(
      `ipsec: no pre-shared key file ${path} for peer ${peer} (make one with: head -c 48 /dev/urandom | base64 > ${path}; chmod 600 ${path}; then copy it to the peer)`,
      { cause: err },
    );
  }
  if ((st.mode & 0o077) !== 0 || st.uid !== process.getuid?.()) {
    throw new ValidationError(
      `ipsec: pre-shared key file ${path} must be owned by this user and 0600 (it is ${(st.mode & 0o777).toString(8)}): chmod 600 ${path}`,
    );
  }
  let psk = await readFile(path);
  if (psk.at(-1) === 0x0a) psk = psk.subarray(0, psk.at(-2) === 0x0d ? -2 : -1);
  // Say what is wrong with the key, never what it is.
  if (psk.length < PSK_MIN_BYTES)
    throw new ValidationError(
      `ipsec: pre-shared key file ${path} holds ${psk.length} bytes; use at least ${PSK_MIN_BYTES} random ones (head -c 48 /dev/urandom | base64)`,
    );
  return psk;
}

/** The PSKs of every peer that uses one, for renderSwanctlSecrets. */
export async function readPsks(input: SwanctlInput): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const peer of input.peers)
    if ('pskFile' in peer.auth) out.set(peer.name, await readPskFile(peer.auth.pskFile, peer.name));
  return out;
}

/**
 * Puts the rendered files under the swanctl directory: conf.d/vfwire.conf (0644),
 * conf.d/vfwire-secrets.conf (0600, removed when no peer uses a PSK) and the private-key links
 * in private/ (vfwire's earlier links that are no longer wanted are removed).
 */
export async function writeSwanctlFiles(
  swanctlDir: string,
  rendered: SwanctlConf,
  secrets: string | undefined,
): Promise<void> {
  const confPath = join(swanctlDir, CONF_FILE);
  const secretsPath = join(swanctlDir, SECRETS_FILE);
  await mkdir(dirname(confPath), { recursive: true, mode: 0o755 });
  await writeFileAtomic(confPath, rendered.conf, { mode: 0o644, fsync: true });
  if (secrets === undefined) await ifExists(unlink(secretsPath));
  else await writeFileAtomic(secretsPath, secrets, { mode: 0o600, fsync: true });
  const privateDir = join(swanctlDir, 'private');
  await mkdir(privateDir, { recursive: true, mode: 0o700 });
  const wanted = new Map(rendered.privateKeys.map((k) => [k.name, k.target]));
  for (const name of await readdir(privateDir)) {
    if (/^vfwire-[0-9a-f]{12}\.key$/.test(name) && !wanted.has(name)) await ifExists(unlink(join(privateDir, name)));
  }
  for (const [name, target] of wanted) {
    const link = join(privateDir, name);
    // A symlink: swanctl follows it (it stat()s each entry), and the key stays where the operator keeps it.
    if ((await ifExists(lstat(link)))?.isSymbolicLink()) await unlink(link);
    await symlink(target, link);
  }
}

/**
 * `swanctl --load-all`: connections, then credentials, from the swanctl directory. Beware that
 * swanctl unloads every connection the daemon has and the file lacks, so on a real host vfwire
 * loads the system's swanctl.conf (which includes conf.d/*.conf), never its own file alone.
 */
export function loadAllArgv(opts: { swanctlDir?: string; uri?: string } = {}): string[] {
  const dir = opts.swanctlDir ?? DEFAULT_SWANCTL_DIR;
  const file = dir === DEFAULT_SWANCTL_DIR ? [] : ['--file', join(dir, 'swanctl.conf')];
  return ['swanctl', '--load-all', ...file, ...uriArgs(opts.uri)];
}

function uriArgs(uri: string | undefined): string[] {
  return uri ? ['--uri', uri] : [];
}

async function exists(path: string): Promise<boolean> {
  return (await ifExists(stat(path))) !== undefined;
}
