// `vfwire ipsec up|down` with ipsec.mode ikev2 against Debian's charon (5.9.8): the offload
// decision for this version, loading and unloading vfwire's connection, the ledger record, and
// no PSK in any output. One charon in its own netns and private /run (test/helpers/charon.ts).

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/config.js';
import { ExecRunner } from '../../src/exec/runner.js';
import { checkIkeChildren } from '../../src/ipsec/ikev2.js';
import { readLedger } from '../../src/ledger/store.js';
import { CHARON, startCharon, stopCharon, type Charon } from '../helpers/charon.js';
import { vfwire } from '../helpers/cli.js';

describe('ipsec mode ikev2 (real charon)', function () {
  this.timeout(60_000);
  const root = mkdtempSync(join(tmpdir(), 'vfwt-ikecli-'));
  const ns = `vfwt-ikecli-${randomBytes(2).toString('hex')}`;
  const swan = join(root, 'swanctl');
  const uri = `unix://${root}/charon.vici`;
  const cfgPath = join(root, 'config.yaml');
  let charon: Charon | undefined;

  const writeConfig = (ipsec: Record<string, unknown>) =>
    writeFileSync(
      cfgPath,
      stringify({
        backend: 'sim',
        sysfs_root: join(root, 'sys'),
        state_dir: join(root, 'state'),
        log_dir: join(root, 'log'),
        underlay: { interface: 'up0', address: '198.18.77.1' },
        pfs: [{ name: 'enp3s0f0np0' }],
        peers: [{ name: 'hostb', address: '198.18.77.2' }],
        ipsec: { mode: 'ikev2', key_dir: join(root, 'keys'), swanctl_dir: swan, vici_uri: uri, ...ipsec },
      }),
    );

  before(async function () {
    if (![CHARON, '/usr/sbin/swanctl'].every(existsSync)) {
      if (process.env.CI) throw new Error('strongSwan is not installed (scripts/bootstrap.sh installs it)');
      this.skip();
    }
    await execa('ip', ['netns', 'add', ns]);
    await execa('ip', ['-n', ns, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1']);
    await execa('ip', ['-n', ns, 'addr', 'add', '198.18.77.1/24', 'dev', 'up0']);
    await execa('ip', ['-n', ns, 'link', 'set', 'up0', 'up']);
    charon = await startCharon({
      name: ns,
      netns: ns,
      confPath: join(root, 'strongswan.conf'),
      strongswanConf: `charon {\n  load_modular = no\n  load = random nonce openssl kdf pem pkcs1 x509 pubkey kernel-netlink socket-default vici\n  plugins { vici { socket = ${uri} } }\n}\n`,
      swanctlDir: swan,
      socket: join(root, 'charon.vici'),
      env: { STRONGSWAN_CONF: join(root, 'strongswan.conf') },
    });
    writeConfig({});
  });

  after(async () => {
    await stopCharon(charon);
    await execa('ip', ['netns', 'del', ns], { reject: false });
    rmSync(root, { recursive: true, force: true });
  });

  const psk = () => readFileSync(join(root, 'keys', 'hostb.psk'), 'utf8').trim();

  it('keygen writes a 0600 PSK for the peer', async () => {
    const r = await vfwire(['--config', cfgPath, 'ipsec', 'keygen', '--peer', 'hostb']);
    expect(r.code, r.stderr).to.equal(0);
    expect(psk()).to.match(/^[A-Za-z0-9+/]{64}$/);
  });

  it('refuses packet offload (the default) on strongSwan 5.9.8 in one line naming ipsec.offload: crypto', async () => {
    const r = await vfwire(['--config', cfgPath, 'ipsec', 'up', '--dry-run']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(
      /strongSwan 5\.9\.\d+ cannot program IPsec packet offload \(hw_offload = packet needs strongSwan >= 5\.9\.10\)/,
    );
  });

  it("loads vfwire's connection into charon, records the peer, never prints the PSK", async () => {
    writeConfig({ offload: 'crypto' });
    const dry = await vfwire(['--config', cfgPath, 'ipsec', 'up', '--dry-run']);
    expect(dry.code, dry.stderr).to.equal(0);
    expect(dry.stdout).to.include('hw_offload = yes').and.include('vfwire-hostb');
    const up = await vfwire(['--config', cfgPath, 'ipsec', 'up']);
    expect(up.code, up.stderr).to.equal(0);
    const conns = await execa('swanctl', ['--list-conns', '--uri', uri], { reject: false });
    expect(conns.stdout).to.include('vfwire-hostb: IKEv2');
    expect((await readLedger(join(root, 'state'))).ipsec?.peers).to.have.property('hostb');
    for (const text of [dry.stdout, dry.stderr, up.stdout, up.stderr, conns.stdout])
      expect(text.includes(psk())).to.equal(false);
    // No peer answers: the children are not INSTALLED, so an encrypted start would be refused.
    expect(
      await checkIkeChildren(await loadConfig(cfgPath), new ExecRunner(), [{ name: 'hostb', address: '198.18.77.2' }]),
    ).to.deep.equal(['vfwire-hostb-out', 'vfwire-hostb-in']);
  });

  it('ipsec watch asks strongSwan for new CHILD_SAs when they are not INSTALLED', async () => {
    const r = await vfwire(['--config', cfgPath, 'ipsec', 'watch', '--once']);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.include(
      'hostb: lost vfwire-hostb-out, vfwire-hostb-in: asked strongSwan to negotiate new CHILD_SAs (fresh keys)',
    );
  });

  it('down unloads it and forgets the peer', async () => {
    const down = await vfwire(['--config', cfgPath, 'ipsec', 'down']);
    expect(down.code, down.stderr).to.equal(0);
    expect((await execa('swanctl', ['--list-conns', '--uri', uri], { reject: false })).stdout).not.to.include(
      'vfwire-hostb',
    );
    expect((await readLedger(join(root, 'state'))).ipsec?.peers).to.deep.equal({});
  });
});
