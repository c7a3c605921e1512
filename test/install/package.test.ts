// The Debian package (`npm run package`), installed into a throwaway root by dpkg itself: the
// file list, the maintainer scripts' effect, and install, upgrade, remove, reinstall and purge.

import { expect } from 'chai';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const HOOK = 'etc/libvirt/hooks/qemu.d/vfwire';
const CONF = 'etc/vfwire/config.yaml';
const WANTS = 'etc/systemd/system/multi-user.target.wants';
const DROPIN = 'etc/systemd/system/vfwire-host-setup.service.d/pfs.conf';
const V1 = '0.1.0';
const V2 = '0.1.0+upgrade1';

/** Files and symlinks under dir, relative to it, outside node_modules and dpkg's database. */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.name === 'node_modules' || relative(dir, p) === 'var/lib/dpkg') continue;
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

describe('the Debian package', function () {
  this.timeout(300_000);
  let out: string;
  let root: string;
  const deb = (v: string) => join(out, `vfwire_${v}_${arch}.deb`);
  let arch: string;
  const dpkg = (...args: string[]) =>
    execa('dpkg', [`--root=${root}`, '--force-depends', '--force-script-chrootless', ...args], { reject: false });
  const at = (f: string) => join(root, f);
  const example = () => readFileSync(join(SRC, 'templates/config.example.yaml'), 'utf8');

  before(async function () {
    // postinst runs the CLI with Debian's node, as the package's Depends provides it.
    if (!existsSync('/usr/bin/node')) this.skip();
    arch = (await execa('dpkg', ['--print-architecture'])).stdout.trim();
    out = mkdtempSync(join(tmpdir(), 'vfwt-deb-'));
    for (const v of [V1, V2]) await execa(join(SRC, 'scripts/package-deb.sh'), ['--version', v, '--out', out]);
  });
  after(() => out && rmSync(out, { recursive: true, force: true }));
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'vfwt-dpkgroot-'));
    mkdirSync(join(root, 'var/lib/dpkg/info'), { recursive: true });
    mkdirSync(join(root, 'var/lib/dpkg/updates'));
    writeFileSync(join(root, 'var/lib/dpkg/status'), '');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('holds the program, the units, the config as a 0600 conffile, and says what it needs', async () => {
    const info = await execa('dpkg-deb', ['--field', deb(V1)]);
    expect(info.stdout).to.match(/^Depends: nodejs \(>= 20\), libvirt-daemon \(>= 6\.5\), iproute2, nftables$/m);
    expect(info.stdout).to.include(`Architecture: ${arch}\n`);
    expect((await execa('dpkg-deb', ['--info', deb(V1), 'conffiles'])).stdout.trim()).to.equal(
      '/etc/vfwire/config.yaml',
    );

    const r = await dpkg('-i', deb(V1));
    expect(r.exitCode, r.stderr).to.equal(0);
    const listed = (await execa('dpkg', [`--root=${root}`, '-L', 'vfwire'])).stdout
      .split('\n')
      .filter((p) => !p.includes('/node_modules/') && !statSync(at(p)).isDirectory())
      .map((p) => p.slice(1))
      .sort();
    const program = (await execa(join(SRC, 'installer/program-files.sh'), [SRC, 'files'])).stdout
      .split('\n')
      .map((f) => `usr/lib/vfwire/${f}`);
    expect(listed).to.deep.equal(
      [
        ...program,
        CONF,
        'lib/systemd/system/vfwire-host-setup.service',
        'lib/systemd/system/vfwire-ipsec.service',
        'usr/bin/vfwire',
        'usr/share/doc/vfwire/README.md',
        'usr/share/doc/vfwire/copyright',
      ].sort(),
    );
    expect(statSync(at(CONF)).mode & 0o777).to.equal(0o600);
    expect(readFileSync(at(CONF), 'utf8')).to.equal(example());
    expect(readlinkSync(at('usr/bin/vfwire'))).to.equal('../lib/vfwire/dist/src/cli.js');
    const setup = readFileSync(at('lib/systemd/system/vfwire-host-setup.service'), 'utf8');
    expect(setup).to.include('ExecStart=/usr/bin/vfwire host setup\n');
    expect(setup).to.include('Environment=PATH=/usr/sbin:/usr/bin:/sbin:/bin\n');
    expect(setup).to.not.include('@');

    // The installed copy runs on the dependencies the package carries.
    const help = await execa('node', [at('usr/lib/vfwire/dist/src/cli.js'), '--help']);
    expect(help.stdout).to.include('Usage: vfwire');

    // systemd's own check of the package's units, on copies whose programs point into the root.
    const check = mkdtempSync(join(tmpdir(), 'vfwt-units-'));
    try {
      const units = ['vfwire-host-setup.service', 'vfwire-ipsec.service'];
      for (const u of units) {
        const text = readFileSync(at(`lib/systemd/system/${u}`), 'utf8');
        writeFileSync(join(check, u), text.replaceAll('/usr/bin/vfwire', at('usr/lib/vfwire/dist/src/cli.js')));
      }
      const verify = await execa(
        'systemd-analyze',
        ['verify', '--man=no', '--generators=no', ...units.map((u) => join(check, u))],
        { reject: false },
      );
      expect(verify.exitCode, verify.stderr).to.equal(0);
      expect(verify.stderr, 'warnings about our units').to.not.match(/vfwire-(host-setup|ipsec)\.service:/);
    } finally {
      rmSync(check, { recursive: true, force: true });
    }
  });

  it("postinst renders the hook, the directories and the units' enablement from the config", async () => {
    const r = await dpkg('-i', deb(V1));
    expect(r.exitCode, r.stderr).to.equal(0);
    const hook = readFileSync(at(HOOK), 'utf8');
    expect(hook.split('\n').slice(0, 7)).to.deep.equal([
      '#!/bin/sh',
      '# installed by the vfwire package',
      'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
      'VFWIRE_HOOK=/usr/lib/vfwire/dist/bundle/hook-main.js',
      'export VFWIRE_INSTALLED_BY=package',
      'export VFWIRE_CONFIG=/etc/vfwire/config.yaml',
      'export VFWIRE_STATE_DIR=/var/lib/vfwire',
    ]);
    expect(statSync(at(HOOK)).mode & 0o777).to.equal(0o755);
    expect(statSync(at('var/lib/vfwire')).mode & 0o777).to.equal(0o700);
    expect(statSync(at('var/log/vfwire')).mode & 0o777).to.equal(0o750);
    // Host setup at boot; IPsec not, while ipsec.mode is off; no PF to wait for in the example.
    expect(readdirSync(at(WANTS))).to.deep.equal(['vfwire-host-setup.service']);
    expect(readlinkSync(at(`${WANTS}/vfwire-host-setup.service`))).to.equal(
      '/lib/systemd/system/vfwire-host-setup.service',
    );
    expect(existsSync(at(DROPIN))).to.equal(false);
    expect(r.stdout).to.include('is still the example; edit it, then run dpkg-reconfigure vfwire');
    expect(r.stdout).to.include('restart libvirtd');

    // The rendered hook is the shim: an untagged VM's prepare leaves at once, successfully.
    const call = await execa(at(HOOK), ['vm1', 'prepare', 'begin', '-'], {
      input: '<domain type="kvm"><name>vm1</name><uuid>6f1d1f0e-5f8e-4c3a-9d4e-3b2a1c0d9e8f</uuid></domain>',
      reject: false,
    });
    expect(call.exitCode, call.stderr).to.equal(0);

    // install.sh never takes over the package's hook.
    const over = await execa(join(SRC, 'install.sh'), ['--root', root, '--hook-style', 'qemu.d'], { reject: false });
    expect(over.exitCode).to.equal(1);
    expect(over.stderr).to.include("is the vfwire package's: upgrade with the package");
    expect(existsSync(at('usr/local'))).to.equal(false);
  });

  it("an upgrade keeps the operator's config and choices and renders the hook and PF order again", async () => {
    expect((await dpkg('-i', deb(V1))).exitCode).to.equal(0);
    const edited = example()
      .replace(/^state_dir: .*$/m, 'state_dir: /srv/vfwire/state')
      .replace('- name: enp3s0f0np0', '- name: ens1f0-pf0');
    writeFileSync(at(CONF), edited, { mode: 0o600 });
    await execa('systemctl', [`--root=${root}`, 'disable', '-q', 'vfwire-host-setup.service']);

    const up = await dpkg('-i', deb(V2));
    expect(up.exitCode, up.stderr).to.equal(0);
    expect(readFileSync(at(CONF), 'utf8')).to.equal(edited);
    expect(statSync(at(CONF)).mode & 0o777).to.equal(0o600);
    expect(readFileSync(at(HOOK), 'utf8')).to.include('export VFWIRE_STATE_DIR=/srv/vfwire/state\n');
    expect(readFileSync(at(DROPIN), 'utf8')).to.include(
      '[Unit]\nRequires=sys-subsystem-net-devices-ens1f0\\x2dpf0.device\nAfter=sys-subsystem-net-devices-ens1f0\\x2dpf0.device\n',
    );
    expect(existsSync(at(WANTS)) ? readdirSync(at(WANTS)) : []).to.deep.equal([]);
    const status = await execa('dpkg-query', [`--root=${root}`, '-W', '-f', '${Version} ${Status}', 'vfwire']);
    expect(status.stdout).to.equal(`${V2} install ok installed`);

    // dpkg-reconfigure (postinst configure, DEBCONF_RECONFIGURE set) applies the config's
    // services: host setup, and IPsec now that ipsec.mode is on.
    writeFileSync(at(CONF), edited.replace(/^ {2}mode: off$/m, '  mode: static'), { mode: 0o600 });
    const again = await execa(at('var/lib/dpkg/info/vfwire.postinst'), ['configure', V2], {
      env: { DPKG_ROOT: root, DEBCONF_RECONFIGURE: '1' },
      reject: false,
    });
    expect(again.exitCode, again.stderr).to.equal(0);
    expect(readdirSync(at(WANTS)).sort()).to.deep.equal(['vfwire-host-setup.service', 'vfwire-ipsec.service']);
  });

  it('remove keeps the config and the ledger, a reinstall restores the services, purge leaves nothing', async () => {
    expect((await dpkg('-i', deb(V1))).exitCode).to.equal(0);
    writeFileSync(at('var/lib/vfwire/ledger.json'), '{}');
    mkdirSync(at('var/lib/vfwire/vms'));
    writeFileSync(at('var/lib/vfwire/vms/6f1d1f0e-5f8e-4c3a-9d4e-3b2a1c0d9e8f'), '');
    mkdirSync(at('etc/vfwire/keys'), { mode: 0o700 });
    writeFileSync(at('etc/vfwire/keys/hostb.key'), 'not a real key', { mode: 0o600 });

    const rm = await dpkg('--remove', 'vfwire');
    expect(rm.exitCode, rm.stderr).to.equal(0);
    expect(rm.stdout).to.include('1 VM(s) still hold vfwire leases');
    const status = await execa('dpkg-query', [`--root=${root}`, '-W', '-f', '${Status}', 'vfwire']);
    expect(status.stdout).to.equal('deinstall ok config-files');
    expect(files(root)).to.deep.equal([
      CONF,
      'etc/vfwire/keys/hostb.key',
      'var/lib/vfwire/.units-enabled-before-remove',
      'var/lib/vfwire/ledger.json',
      'var/lib/vfwire/vms/6f1d1f0e-5f8e-4c3a-9d4e-3b2a1c0d9e8f',
    ]);

    expect((await dpkg('-i', deb(V1))).exitCode).to.equal(0);
    expect(readdirSync(at(WANTS))).to.deep.equal(['vfwire-host-setup.service']);
    expect(existsSync(at('var/lib/vfwire/.units-enabled-before-remove'))).to.equal(false);
    expect(lstatSync(at(HOOK)).isFile()).to.equal(true);

    const purge = await dpkg('--purge', 'vfwire');
    expect(purge.exitCode, purge.stderr).to.equal(0);
    expect(files(root)).to.deep.equal([]);
    for (const d of ['etc/vfwire', 'var/lib/vfwire', 'var/log/vfwire', 'usr/lib/vfwire', 'etc/libvirt/hooks/qemu.d'])
      expect(existsSync(at(d)), d).to.equal(false);
  });

  it("leaves an operator's own hook alone and says libvirt will not run vfwire", async () => {
    mkdirSync(dirname(at(HOOK)), { recursive: true });
    writeFileSync(at(HOOK), '#!/bin/sh\necho mine\n', { mode: 0o755 });
    const r = await dpkg('-i', deb(V1));
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stdout).to.include("is not vfwire's: left alone, so libvirt never runs vfwire");
    expect(readFileSync(at(HOOK), 'utf8')).to.equal('#!/bin/sh\necho mine\n');
    expect((await dpkg('--purge', 'vfwire')).exitCode).to.equal(0);
    expect(files(root)).to.deep.equal([HOOK]);
  });
});
