// install.sh into a --root tree: exact file sets, idempotence, uninstall, and a user's own hook.

import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync, lstatSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { expectUnitsVerify } from '../helpers/systemd-verify.js';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const install = (root: string, ...args: string[]) =>
  execa(join(SRC, 'install.sh'), ['--root', root, ...args], { reject: false });

/** Files and symlinks under root, relative, outside node_modules. */
function files(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.name === 'node_modules') continue;
      if (e.isDirectory()) walk(p);
      else out.push(relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

function expectedProgramFiles(): string[] {
  const program = files(SRC).filter(
    (f) =>
      ((f.startsWith('dist/src/') || f.startsWith('dist/bundle/')) && /\.c?js$/.test(f)) ||
      f.startsWith('hooks/') ||
      f.startsWith('templates/') ||
      f.startsWith('installer/') ||
      f === 'package.json',
  );
  return program.map((f) => `usr/local/lib/vfwire/${f}`);
}

describe('install.sh --root', function () {
  this.timeout(120_000);
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'vfwt-root-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('installs exactly the program, hook, config and link; a second run changes nothing', async () => {
    const first = await install(root, '--hook-style', 'qemu.d');
    expect(first.exitCode, first.stderr).to.equal(0);
    expect(first.stdout).to.include('restart libvirtd');
    const expected = [
      ...expectedProgramFiles(),
      'etc/libvirt/hooks/qemu.d/vfwire',
      'etc/systemd/system/vfwire-host-setup.service',
      'etc/systemd/system/vfwire-ipsec.service',
      'etc/vfwire/config.yaml',
      'usr/local/bin/vfwire',
    ].sort();
    expect(files(root)).to.deep.equal(expected);
    expect(statSync(join(root, 'etc/vfwire/config.yaml')).mode & 0o777).to.equal(0o600);
    expect(statSync(join(root, 'etc/libvirt/hooks/qemu.d/vfwire')).mode & 0o777).to.equal(0o755);
    expect(statSync(join(root, 'var/lib/vfwire')).mode & 0o777).to.equal(0o700);
    expect(lstatSync(join(root, 'usr/local/bin/vfwire')).isSymbolicLink()).to.equal(true);
    // The shim's pins: the installed hook, the config, and the config's state directory, where
    // it looks for VM markers without starting Node.
    const shim = readFileSync(join(root, 'etc/libvirt/hooks/qemu.d/vfwire'), 'utf8');
    expect(shim).to.include('VFWIRE_HOOK=/usr/local/lib/vfwire/dist/bundle/hook-main.js');
    expect(shim).to.include('export VFWIRE_CONFIG=/etc/vfwire/config.yaml\n');
    expect(shim).to.include('export VFWIRE_STATE_DIR=/var/lib/vfwire\n');

    const stamp = (f: string) => statSync(join(root, f)).mtimeMs;
    const before = expected.filter((f) => !f.endsWith('bin/vfwire')).map(stamp);
    const second = await install(root, '--hook-style', 'qemu.d');
    expect(second.stdout.trim()).to.equal('install.sh: vfwire is installed and unchanged');
    expect(expected.filter((f) => !f.endsWith('bin/vfwire')).map(stamp)).to.deep.equal(before);

    // The installed copy runs on its own dependencies.
    const help = await execa('node', [join(root, 'usr/local/lib/vfwire/dist/src/cli.js'), '--help']);
    expect(help.stdout).to.include('Usage: vfwire');

    // A hook call leaves its compile cache in the state directory; it goes with the program.
    await execa(
      'node',
      [join(root, 'usr/local/lib/vfwire/dist/bundle/hook-main.js'), '--', 'vm1', 'start', 'begin', '-'],
      {
        input: '<domain/>',
        env: { VFWIRE_STATE_DIR: join(root, 'var/lib/vfwire'), VFWIRE_CONFIG: join(root, 'etc/vfwire/config.yaml') },
      },
    );
    expect(readdirSync(join(root, 'var/lib/vfwire/code-cache'))).to.have.length(1);

    const un = await install(root, '--uninstall');
    expect(un.exitCode, un.stderr).to.equal(0);
    expect(files(root)).to.deep.equal([]);
  });

  it("boot units: host setup after the config's PFs and before libvirtd, then IPsec; systemd-analyze verify passes", async () => {
    const unit = (u: string) => readFileSync(join(root, 'etc/systemd/system', u), 'utf8');
    // The untouched example names no PF of this host: no device to wait for at boot.
    const first = await install(root, '--hook-style', 'qemu.d');
    expect(first.exitCode, first.stderr).to.equal(0);
    expect(first.stdout).to.include('host setup is not ordered after any PF device: ');
    expect(unit('vfwire-host-setup.service')).to.not.include('sys-subsystem-net-devices');
    // An edited config's PFs, as systemd names their devices ('-' is escaped as \x2d).
    const conf = join(root, 'etc/vfwire/config.yaml');
    const example = readFileSync(join(SRC, 'templates/config.example.yaml'), 'utf8');
    writeFileSync(conf, example.replace('- name: enp3s0f0np0', '- name: ens1f0-pf0'), { mode: 0o600 });
    expect((await install(root, '--hook-style', 'qemu.d')).exitCode).to.equal(0);
    const setup = unit('vfwire-host-setup.service');
    expect(setup).to.include('ExecStart=/usr/local/bin/vfwire host setup\n');
    expect(setup).to.include('Environment=VFWIRE_CONFIG=/etc/vfwire/config.yaml\n');
    expect(setup).to.match(/^Environment=PATH=\/.*:\/usr\/sbin:\/usr\/bin:\/sbin:\/bin$/m);
    expect(setup).to.include('Requires=sys-subsystem-net-devices-ens1f0\\x2dpf0.device\n');
    expect(setup).to.include('After=sys-subsystem-net-devices-ens1f0\\x2dpf0.device\n');
    expect(setup).to.match(/^Before=network-pre\.target libvirtd\.service virtqemud\.service/m);
    expect(setup).to.not.include('@');
    const ipsec = unit('vfwire-ipsec.service');
    expect(ipsec).to.include(
      'ExecStartPre=/usr/local/bin/vfwire ipsec up\nExecStart=/usr/local/bin/vfwire ipsec watch\n',
    );
    expect(ipsec).to.include('Restart=on-failure\n');
    expect(ipsec).to.match(/^Requires=vfwire-host-setup\.service$/m);
    // systemd's own check, the program pointed into the installed tree (its link is absolute, to /usr/local).
    await expectUnitsVerify(
      { 'vfwire-host-setup.service': setup, 'vfwire-ipsec.service': ipsec },
      '/usr/local/bin/vfwire',
      join(root, 'usr/local/lib/vfwire/dist/src/cli.js'),
    );
  });

  it('without systemd: no units, and the boot commands said', async () => {
    const r = await install(root, '--hook-style', 'qemu.d', '--systemd', 'no');
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stdout).to.include('no systemd here: at boot, before libvirtd, run: vfwire host setup');
    expect(files(root).filter((f) => f.startsWith('etc/systemd'))).to.deep.equal([]);
  });

  it('never overwrites a user hook: refuses in qemu style, sits beside it in qemu.d style', async () => {
    const userHook = join(root, 'etc/libvirt/hooks/qemu');
    mkdirSync(dirname(userHook), { recursive: true });
    writeFileSync(userHook, '#!/bin/sh\necho mine\n', { mode: 0o755 });

    const refused = await install(root, '--hook-style', 'qemu');
    expect(refused.exitCode).to.equal(1);
    expect(refused.stderr).to.match(/hooks\/qemu exists and is not vfwire's; leaving it alone/);
    expect(readFileSync(userHook, 'utf8')).to.equal('#!/bin/sh\necho mine\n');

    expect((await install(root, '--hook-style', 'qemu.d')).exitCode).to.equal(0);
    expect((await install(root, '--uninstall')).exitCode).to.equal(0);
    expect(files(root)).to.deep.equal(['etc/libvirt/hooks/qemu']);
    expect(readFileSync(userHook, 'utf8')).to.equal('#!/bin/sh\necho mine\n');
  });

  it("pins the config's state_dir; without a valid config pins none and says what that costs", async () => {
    const conf = join(root, 'etc/vfwire/config.yaml');
    const hook = join(root, 'etc/libvirt/hooks/qemu.d/vfwire');
    mkdirSync(dirname(conf), { recursive: true });
    const example = readFileSync(join(SRC, 'templates/config.example.yaml'), 'utf8');
    writeFileSync(conf, example.replace(/^state_dir: .*$/m, 'state_dir: /srv/vfwire/state'), { mode: 0o600 });
    expect((await install(root, '--hook-style', 'qemu.d')).exitCode).to.equal(0);
    expect(readFileSync(hook, 'utf8')).to.include('export VFWIRE_STATE_DIR=/srv/vfwire/state\n');

    writeFileSync(conf, 'backend: nonsense\n');
    const again = await install(root, '--hook-style', 'qemu.d');
    expect(again.exitCode, again.stderr).to.equal(0);
    expect(again.stdout).to.match(/install\.sh: the hook cannot pin the state directory: vfwire: .*backend/);
    expect(again.stdout).to.include("the hook starts Node for every VM's release");
    expect(readFileSync(hook, 'utf8')).to.not.include('export VFWIRE_STATE_DIR');
  });

  it('keeps an edited config and the ledger on uninstall', async () => {
    expect((await install(root, '--hook-style', 'qemu.d')).exitCode).to.equal(0);
    writeFileSync(join(root, 'etc/vfwire/config.yaml'), 'backend: sim\n');
    writeFileSync(join(root, 'var/lib/vfwire/ledger.json'), '{}');
    const un = await install(root, '--uninstall');
    expect(un.stdout).to.include('kept').and.include('config.yaml (edited)');
    expect(files(root)).to.deep.equal(['etc/vfwire/config.yaml', 'var/lib/vfwire/ledger.json']);
  });
});
