import { expect } from 'chai';
import {
  chmodSync,
  lstatSync,
  mkdtempSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  existsSync,
  readFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../../src/errors.js';
import type { Runner } from '../../src/exec/runner.js';
import {
  chooseOffload,
  parseStrongSwanVersion,
  renderSwanctlConf,
  renderSwanctlSecrets,
  strongSwanSupportsPacketOffload,
  swanctlNames,
  type SwanctlInput,
} from '../../src/ipsec/swanctl.js';
import { loadAllArgv, readPskFile, readStrongSwanVersion, writeSwanctlFiles } from '../../src/ipsec/swanctl-charon.js';
import { expectGolden } from '../helpers/golden.js';

const A = '192.168.80.2';
const B = '192.168.80.3';
// A test key, not a secret: fixed so the golden file is stable.
const PSK = Buffer.from('vfwire-test-psk-0123456789abcdef-not-secret');

const pair = (local: string, peer: string, peerName: string, over: Partial<SwanctlInput> = {}): SwanctlInput => ({
  localAddress: local,
  uplink: 'enp3s0f0np0',
  offload: 'packet',
  rekeyTime: 3600,
  peers: [{ name: peerName, address: peer, auth: { pskFile: `/etc/vfwire/keys/${peerName}.psk` } }],
  ...over,
});

/** The selectors of each child, from rendered text: { 'vfwire-hostb-out': { local, remote }, ... }. */
function childSelectors(conf: string): Record<string, { local: string; remote: string }> {
  const out: Record<string, { local: string; remote: string }> = {};
  for (const m of conf.matchAll(/(vfwire-[\w-]+-(?:out|in)) \{\s*local_ts = (\S+)\s*remote_ts = (\S+)/g))
    out[m[1]!] = { local: m[2]!, remote: m[3]! };
  return out;
}

describe('swanctl.conf for IKEv2 mode', () => {
  it('host A to host B with packet offload (golden)', () => {
    const r = renderSwanctlConf(pair(A, B, 'hostb'));
    expectGolden('ipsec/swanctl-host-a.conf', r.conf);
    expect(r.privateKeys).to.deep.equal([]);
  });

  it("host B mirrors host A (golden): each side's -out is the other's -in, and only the lower address starts", () => {
    const a = renderSwanctlConf(pair(A, B, 'hostb')).conf;
    const b = renderSwanctlConf(pair(B, A, 'hosta')).conf;
    expectGolden('ipsec/swanctl-host-b.conf', b);
    const [ta, tb] = [childSelectors(a), childSelectors(b)];
    expect(ta['vfwire-hostb-out']).to.deep.equal({ local: `${A}/32[udp]`, remote: `${B}/32[udp/4789]` });
    expect(ta['vfwire-hostb-out']).to.deep.equal({
      local: tb['vfwire-hosta-in']!.remote,
      remote: tb['vfwire-hosta-in']!.local,
    });
    expect(ta['vfwire-hostb-in']).to.deep.equal({
      local: tb['vfwire-hosta-out']!.remote,
      remote: tb['vfwire-hosta-out']!.local,
    });
    expect(a.match(/start_action = trap\|start/g)).to.have.length(2);
    expect(b).not.to.include('start_action = trap|start');
    expect(b.match(/start_action = trap$/gm)).to.have.length(2);
  });

  it('renders transport mode, ESN, the IKE proposal and dpd for every child and connection', () => {
    const { conf } = renderSwanctlConf(pair(A, B, 'hostb', { offload: 'crypto' }));
    expect(conf.match(/mode = transport/g)).to.have.length(2);
    expect(conf.match(/esp_proposals = aes128gcm16-esn$/gm)).to.have.length(2);
    expect(conf)
      .to.include('proposals = aes128gcm16-prfsha256-ecp256')
      .and.include('dpd_delay = 30s')
      .and.include('version = 2');
    // crypto offload is `yes`: the only spelling strongSwan < 5.9.10 accepts, the same meaning after.
    expect(conf.match(/hw_offload = yes$/gm)).to.have.length(2);
    expect(renderSwanctlConf(pair(A, B, 'hostb', { offload: 'none' })).conf.match(/hw_offload = no$/gm)).to.have.length(
      2,
    );
  });

  it('rekeys every child after ipsec.rekey_time, with time to finish before the old SA ends, and refuses a time under 10 s', () => {
    const lifetimes = (rekeyTime: number) =>
      [
        ...renderSwanctlConf(pair(A, B, 'hostb', { rekeyTime })).conf.matchAll(
          /^ +(rekey_time|life_time|rand_time) = (\d+)s$/gm,
        ),
      ].map((m) => `${m[1]} ${m[2]}`);
    // An hour: strongSwan's own defaults (life 110%, rand the difference), for both children.
    expect(lifetimes(3600)).to.deep.equal([
      'rekey_time 3600',
      'life_time 3960',
      'rand_time 360',
      'rekey_time 3600',
      'life_time 3960',
      'rand_time 360',
    ]);
    // Short: the old SA lives 30 s past the rekey, not 10%.
    expect(lifetimes(15).slice(0, 3)).to.deep.equal(['rekey_time 15', 'life_time 45', 'rand_time 2']);
    expect(() => renderSwanctlConf(pair(A, B, 'hostb', { rekeyTime: 5 }))).to.throw(
      /rekey_time: 5 must be a whole number of seconds, at least 10/,
    );
  });

  it('certificates: cert and CA paths in the conf, the key to be linked into private/ (golden)', () => {
    const input = pair(A, B, 'hostb', {
      offload: 'crypto',
      peers: [
        {
          name: 'hostb',
          address: B,
          auth: { cert: '/etc/vfwire/ike/hosta.crt', key: '/etc/vfwire/ike/hosta.key', ca: '/etc/vfwire/ike/ca.crt' },
        },
        {
          name: 'hostc',
          address: '192.168.80.4',
          auth: { cert: '/etc/vfwire/ike/hosta.crt', key: '/etc/vfwire/ike/hosta.key', ca: '/etc/vfwire/ike/ca.crt' },
        },
      ],
    });
    const r = renderSwanctlConf(input);
    expectGolden('ipsec/swanctl-host-a-cert.conf', r.conf);
    expect(r.privateKeys).to.have.length(1);
    expect(r.privateKeys[0]!.target).to.equal('/etc/vfwire/ike/hosta.key');
    expect(r.privateKeys[0]!.name).to.match(/^vfwire-[0-9a-f]{12}\.key$/);
    expect(renderSwanctlSecrets(input, new Map())).to.equal(undefined);
  });

  it('keeps the PSK out of the conf; the secrets file has it base64-encoded (golden)', () => {
    const input = pair(A, B, 'hostb');
    const { conf } = renderSwanctlConf(input);
    const secrets = renderSwanctlSecrets(input, new Map([['hostb', PSK]]))!;
    expectGolden('ipsec/swanctl-host-a-secrets.conf', secrets);
    expect(conf).not.to.include(PSK.toString('base64')).and.not.include(PSK.toString());
    expect(secrets).to.include(`secret = 0s${PSK.toString('base64')}`);
    let err: unknown;
    try {
      renderSwanctlSecrets(input, new Map());
    } catch (e) {
      err = e;
    }
    expect(err)
      .to.be.instanceOf(ValidationError)
      .with.property('message', 'ipsec: no pre-shared key read for peer hostb');
  });

  it('refuses values that would break swanctl.conf or its meaning, naming the field', () => {
    const cases: [Partial<SwanctlInput>, RegExp][] = [
      [{ peers: [{ name: 'host.b', address: B, auth: { pskFile: '/k' } }] }, /peers\.0\.name: "host\.b" .*no dots/],
      [{ peers: [{ name: 'hostb', address: '192.168.80.300', auth: { pskFile: '/k' } }] }, /peers\.0\.address/],
      [{ peers: [{ name: 'hostb', address: A, auth: { pskFile: '/k' } }] }, /own underlay address/],
      [
        { peers: [{ name: 'hostb', address: B, auth: { pskFile: 'keys/hostb.psk' } }] },
        /peers\.0\.psk_file: .*absolute path/,
      ],
      [{ peers: [{ name: 'hostb', address: B, auth: { cert: '/a b.crt', key: '/k', ca: '/c' } }] }, /peers\.0\.cert:/],
      [{ peers: [{ name: 'hostb', address: B, auth: { cert: '/a.crt', key: '/k', ca: '/c1,/c2' } }] }, /peers\.0\.ca:/],
      [
        {
          peers: [
            { name: 'hostb', address: B, auth: { pskFile: '/k' } },
            { name: 'hostb', address: '192.168.80.9', auth: { pskFile: '/k' } },
          ],
        },
        /peers\.1: "hostb" is listed twice/,
      ],
      [{ localAddress: 'hosta' }, /underlay\.address/],
      [{ offload: 'full' as never }, /offload: "full"/],
    ];
    for (const [over, re] of cases)
      expect(() => renderSwanctlConf(pair(A, B, 'hostb', over)), re.source).to.throw(ValidationError, re);
  });

  it("names a peer's connection and children for swanctl --initiate", () => {
    expect(swanctlNames('hostb')).to.deep.equal({
      conn: 'vfwire-hostb',
      out: 'vfwire-hostb-out',
      in: 'vfwire-hostb-in',
    });
  });
});

describe('strongSwan version and offload policy', () => {
  it('reads the version from swanctl, the daemon over vici and charon', () => {
    expect(parseStrongSwanVersion('strongSwan swanctl 5.9.8\n')).to.equal('5.9.8');
    expect(parseStrongSwanVersion('strongSwan 5.9.13 charon (Linux, 6.1.0-18-amd64, x86_64)\n')).to.equal('5.9.13');
    expect(parseStrongSwanVersion('Linux strongSwan 6.0.1\n')).to.equal('6.0.1');
    expect(parseStrongSwanVersion('strongSwan 5.9.10rc1 swanctl')).to.equal('5.9.10rc1');
    expect(() => parseStrongSwanVersion('command not found')).to.throw(
      ValidationError,
      /cannot find a strongSwan version in "command not found"/,
    );
  });

  it('packet offload from 5.9.10 on', () => {
    const table: [string, boolean][] = [
      ['5.9.8', false],
      ['5.9.9', false],
      ['5.9.10rc1', true],
      ['5.9.10', true],
      ['5.9.14', true],
      ['5.10.0', true],
      ['6.0.0', true],
      ['5.8.4', false],
      ['nonsense', false],
    ];
    for (const [v, ok] of table) expect(strongSwanSupportsPacketOffload(v), v).to.equal(ok);
  });

  it("the config's offload mode where this strongSwan can program it; packet before 5.9.10 is refused in one line naming the fix", () => {
    expect(chooseOffload('5.9.13', 'packet')).to.deep.equal({ offload: 'packet' });
    expect(chooseOffload('5.9.8', 'crypto')).to.deep.equal({ offload: 'crypto' });
    expect(chooseOffload('5.9.8', 'none')).to.deep.equal({ offload: 'none' });
    const refused = chooseOffload('5.9.8', 'packet');
    expect(refused)
      .to.have.property('refused')
      .that.matches(
        /^strongSwan 5\.9\.8 cannot program IPsec packet offload \(hw_offload = packet needs strongSwan >= 5\.9\.10\): upgrade strongSwan, or set ipsec\.offload: crypto/,
      );
  });

  it('asks the running daemon first, then the installed charon', async () => {
    const calls: string[] = [];
    const fake = (daemon: boolean): Runner => ({
      run: async (cmd) => {
        calls.push(cmd.argv.join(' '));
        if (cmd.argv[0] === 'swanctl') {
          if (!daemon) throw new Error("connecting to 'unix:///var/run/charon.vici' failed: No such file or directory");
          return { stdout: 'strongSwan 5.9.8 charon (Linux, 6.1.0, x86_64)', stderr: '' };
        }
        return { stdout: 'Linux strongSwan 5.9.7', stderr: "plugin 'ldap': failed to load" };
      },
    });
    expect(await readStrongSwanVersion({ runner: fake(true), uri: 'unix:///x.vici' })).to.deep.equal({
      version: '5.9.8',
      from: 'daemon',
    });
    expect(calls).to.deep.equal(['swanctl --version --daemon --uri unix:///x.vici']);
    // Any existing file stands in for the charon binary: the runner is fake.
    expect(
      await readStrongSwanVersion({ runner: fake(false), charonPaths: ['/nonexistent/charon', process.execPath] }),
    ).to.deep.equal({ version: '5.9.7', from: 'charon' });
    let err: unknown;
    try {
      await readStrongSwanVersion({ runner: fake(false), charonPaths: ['/nonexistent/charon'] });
    } catch (e) {
      err = e;
    }
    expect(err)
      .to.be.instanceOf(ValidationError)
      .with.property('message')
      .that.matches(/cannot tell which strongSwan.*install strongswan-charon/);
  });

  it('loads through the system swanctl.conf unless told another directory', () => {
    expect(loadAllArgv()).to.deep.equal(['swanctl', '--load-all']);
    expect(loadAllArgv({ swanctlDir: '/tmp/x', uri: 'unix:///tmp/x/charon.vici' })).to.deep.equal([
      'swanctl',
      '--load-all',
      '--file',
      '/tmp/x/swanctl.conf',
      '--uri',
      'unix:///tmp/x/charon.vici',
    ]);
  });
});

describe('swanctl files on disk', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vfwt-swanctl-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a 0600 PSK file without its trailing newline, and says what is wrong without showing it', async () => {
    const file = join(dir, 'hostb.psk');
    writeFileSync(file, `${PSK.toString()}\n`, { mode: 0o600 });
    expect((await readPskFile(file, 'hostb')).equals(PSK)).to.equal(true);
    chmodSync(file, 0o644);
    const errs: string[] = [];
    await readPskFile(file, 'hostb').catch((e: Error) => errs.push(e.message));
    writeFileSync(file, 'short-secret-value\n', { mode: 0o600 });
    chmodSync(file, 0o600);
    await readPskFile(file, 'hostb').catch((e: Error) => errs.push(e.message));
    await readPskFile(join(dir, 'none.psk'), 'hostc').catch((e: Error) => errs.push(e.message));
    expect(errs[0]).to.match(/must be owned by this user and 0600 \(it is 644\): chmod 600/);
    expect(errs[1]).to.match(/holds 18 bytes; use at least 32/);
    expect(errs[2]).to.match(/no pre-shared key file .*none\.psk for peer hostc/);
    for (const e of errs) expect(e).not.to.include('short-secret').and.not.include('vfwire-test-psk');
  });

  it('writes the conf 0644, the secrets 0600, links the keys and removes what is no longer wanted', async () => {
    const key = join(dir, 'hosta.key');
    writeFileSync(key, 'not a key', { mode: 0o600 });
    const input = pair(A, B, 'hostb', {
      peers: [{ name: 'hostb', address: B, auth: { cert: '/etc/c.crt', key, ca: '/etc/ca.crt' } }],
    });
    const rendered = renderSwanctlConf(input);
    await writeSwanctlFiles(dir, rendered, 'secrets {\n}\n');
    await writeSwanctlFiles(dir, rendered, 'secrets {\n}\n'); // twice: same result
    expect(statSync(join(dir, 'conf.d/vfwire.conf')).mode & 0o777).to.equal(0o644);
    expect(statSync(join(dir, 'conf.d/vfwire-secrets.conf')).mode & 0o777).to.equal(0o600);
    const link = join(dir, 'private', rendered.privateKeys[0]!.name);
    expect(lstatSync(link).isSymbolicLink()).to.equal(true);
    expect(readlinkSync(link)).to.equal(key);
    symlinkSync(key, join(dir, 'private/vfwire-000000000000.key'));
    writeFileSync(join(dir, 'private/operator.pem'), 'theirs');
    await writeSwanctlFiles(dir, renderSwanctlConf(pair(A, B, 'hostb')), undefined);
    expect(existsSync(join(dir, 'conf.d/vfwire-secrets.conf'))).to.equal(false);
    expect(existsSync(link)).to.equal(false);
    expect(existsSync(join(dir, 'private/vfwire-000000000000.key'))).to.equal(false);
    expect(readFileSync(join(dir, 'private/operator.pem'), 'utf8')).to.equal('theirs');
  });
});
