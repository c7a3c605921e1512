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
import { expectUnitsVerify } from '../helpers/systemd-verify.js';

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
  /** The config as an operator edits it for a host: its own PF, and whatever else is asked. */
  const edit = (f: (text: string) => string = (t) => t) =>
    writeFileSync(at(CONF), f(example().replace('- name: enp3s0f0np0', '- name: ens1f0-pf0')), { mode: 0o600 });
  /** An installed maintainer script, run as dpkg would run it into this root. */
  const script = (name: string, args: string[], env: Record<string, string> = {}) =>
    execa(at(`var/lib/dpkg/info/vfwire.${name}`), args, { env: { DPKG_ROOT: root, ...env }, reject: false });
  /** dpkg-reconfigure's part that does anything here: postinst configure, DEBCONF_RECONFIGURE set. */
  const reconfigure = () => script('postinst', ['configure', V1], { DEBCONF_RECONFIGURE: '1' });
  const wants = () => (existsSync(at(WANTS)) ? readdirSync(at(WANTS)).sort() : []);

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
    expect(info.stdout).to.match(
      /^Depends: nodejs \(>= 20\), libvirt-daemon \(>= 6\.5\), libvirt0, libc6 \(>= 2\.25\), iproute2, nftables$/m,
    );
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
        'usr/share/doc/vfwire/changelog.gz',
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

    // systemd's own check of the package's units, their program pointed into the root.
    const units = ['vfwire-host-setup.service', 'vfwire-ipsec.service'];
    await expectUnitsVerify(
      Object.fromEntries(units.map((u) => [u, readFileSync(at(`lib/systemd/system/${u}`), 'utf8')])),
      '/usr/bin/vfwire',
      at('usr/lib/vfwire/dist/src/cli.js'),
    );
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
    // Nothing enabled and no PF to wait for while the config is the example (its PF is nobody's).
    expect(wants()).to.deep.equal([]);
    expect(existsSync(at(DROPIN))).to.equal(false);
    expect(r.stdout).to.include('is still the example; edit it, then run dpkg-reconfigure vfwire');
    expect(r.stdout).to.include(
      'vfwire-host-setup.service is not enabled while /etc/vfwire/config.yaml is the example',
    );
    expect(r.stdout).to.include('restart libvirtd');
    // The hook runs what the package installed.
    expect(existsSync(at('usr/lib/vfwire/dist/bundle/hook-main.js'))).to.equal(true);

    // dpkg-reconfigure once the config is edited: host setup at boot, after its PF; IPsec not, while off.
    edit();
    expect((await reconfigure()).exitCode).to.equal(0);
    expect(wants()).to.deep.equal(['vfwire-host-setup.service']);
    expect(readlinkSync(at(`${WANTS}/vfwire-host-setup.service`))).to.equal(
      '/lib/systemd/system/vfwire-host-setup.service',
    );
    expect(readFileSync(at(DROPIN), 'utf8')).to.include('Requires=sys-subsystem-net-devices-ens1f0\\x2dpf0.device\n');

    // The rendered hook is the shim: an untagged VM's prepare leaves at once, successfully.
    const call = await execa(at(HOOK), ['vm1', 'prepare', 'begin', '-'], {
      input: '<domain type="kvm"><name>vm1</name><uuid>6f1d1f0e-5f8e-4c3a-9d4e-3b2a1c0d9e8f</uuid></domain>',
      reject: false,
    });
    expect(call.exitCode, call.stderr).to.equal(0);

    // install.sh never takes over the package's hook.
    const over = await execa(join(SRC, 'install.sh'), ['--root', root, '--hook-style', 'qemu.d'], { reject: false });
    expect(over.exitCode).to.equal(1);
    expect(over.stderr).to.include("vfwire's Debian package is installed here: upgrade it with the package");
    expect(existsSync(at('usr/local'))).to.equal(false);
  });

  it("an upgrade keeps the operator's config and choices and renders the hook and PF order again", async () => {
    expect((await dpkg('-i', deb(V1))).exitCode).to.equal(0);
    edit((t) => t.replace(/^state_dir: .*$/m, 'state_dir: /srv/vfwire/state'));
    const edited = readFileSync(at(CONF), 'utf8');
    expect((await reconfigure()).exitCode).to.equal(0);
    await execa('systemctl', [`--root=${root}`, 'disable', '-q', 'vfwire-host-setup.service']);

    const up = await dpkg('-i', deb(V2));
    expect(up.exitCode, up.stderr).to.equal(0);
    expect(readFileSync(at(CONF), 'utf8')).to.equal(edited);
    expect(statSync(at(CONF)).mode & 0o777).to.equal(0o600);
    expect(readFileSync(at(HOOK), 'utf8')).to.include('export VFWIRE_STATE_DIR=/srv/vfwire/state\n');
    expect(readFileSync(at(DROPIN), 'utf8')).to.include(
      '[Unit]\nRequires=sys-subsystem-net-devices-ens1f0\\x2dpf0.device\nAfter=sys-subsystem-net-devices-ens1f0\\x2dpf0.device\n',
    );
    expect(wants(), 'the operator disabled host setup').to.deep.equal([]);
    const status = await execa('dpkg-query', [`--root=${root}`, '-W', '-f', '${Version} ${Status}', 'vfwire']);
    expect(status.stdout).to.equal(`${V2} install ok installed`);

    // dpkg-reconfigure applies the config's services: host setup, and IPsec now that it is on.
    writeFileSync(at(CONF), edited.replace(/^ {2}mode: off$/m, '  mode: static'), { mode: 0o600 });
    expect((await reconfigure()).exitCode).to.equal(0);
    expect(wants()).to.deep.equal(['vfwire-host-setup.service', 'vfwire-ipsec.service']);
    // ... and a masked unit is said, not fatal.
    await execa('systemctl', [`--root=${root}`, 'disable', '-q', 'vfwire-host-setup.service']);
    await execa('systemctl', [`--root=${root}`, 'mask', '-q', 'vfwire-host-setup.service']);
    const masked = await reconfigure();
    expect(masked.exitCode, masked.stderr).to.equal(0);
    expect(masked.stdout).to.include('systemctl enable -q vfwire-host-setup.service failed');
  });

  it('a config that cannot be read leaves the hook, the PF order and the services as they were', async () => {
    expect((await dpkg('-i', deb(V1))).exitCode).to.equal(0);
    edit((t) => t.replace(/^state_dir: .*$/m, 'state_dir: /srv/vfwire/state'));
    expect((await reconfigure()).exitCode).to.equal(0);
    const before = { hook: readFileSync(at(HOOK), 'utf8'), dropin: readFileSync(at(DROPIN), 'utf8'), wants: wants() };
    writeFileSync(at(CONF), 'backend: nonsense\n', { mode: 0o600 });
    for (const r of [await reconfigure(), await dpkg('-i', deb(V2))]) {
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout).to.include('/etc/vfwire/config.yaml cannot be read: ');
      expect({
        hook: readFileSync(at(HOOK), 'utf8'),
        dropin: readFileSync(at(DROPIN), 'utf8'),
        wants: wants(),
      }).to.deep.equal(before);
    }
  });

  it('keeps the pin where VMs hold leases when state_dir moves, until they are gone', async () => {
    expect((await dpkg('-i', deb(V1))).exitCode).to.equal(0);
    mkdirSync(at('var/lib/vfwire/vms'));
    writeFileSync(at('var/lib/vfwire/vms/6f1d1f0e-5f8e-4c3a-9d4e-3b2a1c0d9e8f'), '');
    edit((t) => t.replace(/^state_dir: .*$/m, 'state_dir: /srv/vfwire/state'));
    const r = await reconfigure();
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stdout).to.include('the hook keeps looking for leases in /var/lib/vfwire: VMs hold leases there');
    expect(readFileSync(at(HOOK), 'utf8')).to.include('export VFWIRE_STATE_DIR=/var/lib/vfwire\n');
    rmSync(at('var/lib/vfwire/vms'), { recursive: true });
    expect((await reconfigure()).exitCode).to.equal(0);
    expect(readFileSync(at(HOOK), 'utf8')).to.include('export VFWIRE_STATE_DIR=/srv/vfwire/state\n');
  });

  it('remove keeps the config and the ledger, a reinstall restores the services, purge leaves nothing', async () => {
    expect((await dpkg('-i', deb(V1))).exitCode).to.equal(0);
    edit();
    expect((await reconfigure()).exitCode).to.equal(0);
    expect(wants()).to.deep.equal(['vfwire-host-setup.service']);
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
      'etc/systemd/system/vfwire-host-setup.service.d/pfs.conf',
      CONF,
      'etc/vfwire/keys/hostb.key',
      'var/lib/vfwire/.units-enabled-before-remove',
      'var/lib/vfwire/ledger.json',
      'var/lib/vfwire/vms/6f1d1f0e-5f8e-4c3a-9d4e-3b2a1c0d9e8f',
    ]);

    expect((await dpkg('-i', deb(V1))).exitCode).to.equal(0);
    expect(wants()).to.deep.equal(['vfwire-host-setup.service']);
    expect(existsSync(at('var/lib/vfwire/.units-enabled-before-remove'))).to.equal(false);

    // An aborted remove (prerm remove, then postinst abort-remove) also puts them back.
    expect((await script('prerm', ['remove'])).exitCode).to.equal(0);
    expect(wants()).to.deep.equal([]);
    expect(existsSync(at(HOOK))).to.equal(false);
    expect((await script('postinst', ['abort-remove'])).exitCode).to.equal(0);
    expect(wants()).to.deep.equal(['vfwire-host-setup.service']);
    expect(existsSync(at(HOOK))).to.equal(true);
    expect(lstatSync(at(HOOK)).isFile()).to.equal(true);

    const purge = await dpkg('--purge', 'vfwire');
    expect(purge.exitCode, purge.stderr).to.equal(0);
    expect(files(root)).to.deep.equal([]);
    for (const d of ['etc/vfwire', 'var/lib/vfwire', 'var/log/vfwire', 'usr/lib/vfwire', 'etc/libvirt/hooks/qemu.d'])
      expect(existsSync(at(d)), d).to.equal(false);
  });

  it('an install.sh copy from before the package is said, and its uninstall keeps what the package uses', async () => {
    const sh = (...args: string[]) => execa(join(SRC, 'install.sh'), ['--root', root, ...args], { reject: false });
    expect((await sh('--hook-style', 'qemu')).exitCode).to.equal(0);
    const r = await dpkg('-i', deb(V1));
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stdout).to.include('/etc/libvirt/hooks/qemu is from an install.sh copy of vfwire');
    expect(r.stdout).to.include('/etc/systemd/system/vfwire-ipsec.service is from an install.sh copy of vfwire');
    const un = await sh('--uninstall');
    expect(un.exitCode, un.stderr).to.equal(0);
    expect(un.stdout).to.include("vfwire's Debian package uses them");
    expect(readFileSync(at(CONF), 'utf8')).to.equal(example());
    expect(existsSync(at('etc/libvirt/hooks/qemu'))).to.equal(false);
    expect(existsSync(at('usr/local/lib/vfwire'))).to.equal(false);
    expect(readFileSync(at(HOOK), 'utf8')).to.include('# installed by the vfwire package\n');
    expect(statSync(at('var/lib/vfwire')).isDirectory()).to.equal(true);
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
