// `vfwire vm set|show|unset` against the real libvirt daemon, on a defined (never started) domain.

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deriveMac } from '../../src/domain/mac.js';
import { defineDomain, libvirtReachable, virsh } from '../../src/sim/libvirtd.js';
import { vfwire } from '../helpers/cli.js';

describe('vfwire vm set/show/unset (libvirtd)', function () {
  this.timeout(60_000);
  const name = `vfwt-${randomBytes(3).toString('hex')}`;
  const xmlDir = mkdtempSync(join(tmpdir(), 'vfwt-'));
  let uuid = '';

  before(async function () {
    if (!(await libvirtReachable())) {
      // CI starts libvirtd (scripts/bootstrap.sh); elsewhere say why this suite did not run.
      if (process.env.CI) throw new Error('libvirtd is not reachable at qemu:///system');
      this.skip();
    }
    await defineDomain(
      xmlDir,
      name,
      `<domain type="qemu"><name>${name}</name><memory unit="MiB">64</memory><os><type arch="x86_64">hvm</type></os></domain>`,
    );
    uuid = (await virsh('domuuid', name)).stdout.trim();
  });

  after(async () => {
    await virsh('undefine', name);
    rmSync(xmlDir, { recursive: true, force: true });
  });

  it('tags a domain and reads it back, with the derived MAC', async () => {
    const set = await vfwire(['vm', 'set', name, '--vni', '100', '--mtu', '1500', '--encrypt', 'off']);
    expect(set.code, set.stderr).to.equal(0);
    const show = JSON.parse((await vfwire(['vm', 'show', name, '--json'])).stdout);
    expect(show.interfaces).to.deep.equal([{ index: 0, vni: 100, mac: deriveMac(uuid, 0), mtu: 1500, encrypt: 'off' }]);
    expect((await virsh('dumpxml', '--inactive', name)).stdout).to.match(
      /<vfwire:net xmlns:vfwire="https:\/\/vfwire.dev\/xmlns\/1.0">\s*<vfwire:interface vni="100"/,
    );
  });

  it('adds a second interface at the next index and refuses a gap', async () => {
    expect((await vfwire(['vm', 'set', name, '--vni', '200', '--index', '1'])).code).to.equal(0);
    const gap = await vfwire(['vm', 'set', name, '--vni', '300', '--index', '5']);
    expect(gap.code).to.equal(1);
    expect(gap.stderr).to.match(/--index: must be 0\.\.2/);
    const show = await vfwire(['vm', 'show', name]);
    expect(show.stdout.trim().split('\n')).to.have.length(2);
    expect(show.stdout).to.include('interface 1: vni 200').and.include('encrypt required');
    // The derived MAC of interface 0 was not written back as an explicit one.
    expect((await virsh('dumpxml', '--inactive', name)).stdout).not.to.include('mac=');
  });

  it('changes one field of an existing interface and keeps the others', async () => {
    expect((await vfwire(['vm', 'set', name, '--index', '1', '--mtu', '8000'])).code).to.equal(0);
    const show = JSON.parse((await vfwire(['vm', 'show', name, '--json'])).stdout);
    expect(show.interfaces[1]).to.include({ vni: 200, mtu: 8000, encrypt: 'required' });
    const noVni = await vfwire(['vm', 'set', name, '--index', '2', '--mtu', '1500']);
    expect(noVni.code).to.equal(1);
    expect(noVni.stderr).to.match(/interface 2: vni: required for a new interface/);
  });

  it('refuses invalid input with one line naming the field, and changes nothing', async () => {
    const before = (await vfwire(['vm', 'show', name, '--json'])).stdout;
    for (const [flag, value, field] of [
      ['--vni', '0', 'vni'],
      ['--vni', '16777216', 'vni'],
      ['--mac', '01:00:5e:00:00:01', 'mac'],
      ['--mtu', 'big', 'mtu'],
    ] as const) {
      const args =
        flag === '--vni' ? ['vm', 'set', name, flag, value] : ['vm', 'set', name, '--vni', '100', flag, value];
      const r = await vfwire(args);
      expect(r.code, `${flag} ${value}`).to.equal(1);
      expect(r.stderr.trim().split('\n'), r.stderr).to.have.length(1);
      expect(r.stderr).to.match(new RegExp(`interface 0: ${field}: `));
    }
    expect((await vfwire(['vm', 'show', name, '--json'])).stdout).to.equal(before);
  });

  it("with the host's config, shows the MTU each VF gets, and one that does not fit", async () => {
    const cfg = join(xmlDir, 'config.yaml');
    writeFileSync(
      cfg,
      `backend: sim\nstate_dir: ${xmlDir}/state\nunderlay: { interface: eth0, address: 198.18.0.1, mtu: 1600 }\npfs: [{ name: eth0 }]\nipsec: { mode: static }\n`,
      { mode: 0o600 },
    );
    // Interface 0 says 1500, interface 1 says 8000: over VXLAN+ESP a 1600 underlay carries 1513.
    const lines = (await vfwire(['--config', cfg, 'vm', 'show', name])).stdout.trim().split('\n');
    expect(lines[0]).to.include('mtu 1500 (from the metadata)');
    expect(lines[1]).to.include(
      'mtu 8000 (does not fit: at most 1513 over VXLAN+ESP on the 1600 underlay; the start is refused)',
    );
    expect((await vfwire(['--config', cfg, 'vm', 'set', name, '--index', '2', '--vni', '300'])).code).to.equal(0);
    const show = JSON.parse((await vfwire(['--config', cfg, 'vm', 'show', name, '--json'])).stdout);
    expect(show.interfaces[2]).to.include({ vni: 300, vfMtu: 1513 });
    expect((await vfwire(['--config', cfg, 'vm', 'show', name])).stdout)
      .to.include('interface 2: vni 300, mac')
      .and.include('mtu 1513 (vf_mtu 9000, at most 1513 over VXLAN+ESP on the 1600 underlay)');
  });

  it('unsets the metadata', async () => {
    expect((await vfwire(['vm', 'unset', name])).code).to.equal(0);
    expect((await vfwire(['vm', 'show', name])).stdout).to.include('no vfwire metadata');
  });

  it('names a domain that does not exist', async () => {
    const r = await vfwire(['vm', 'show', `${name}-nope`]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/no such domain/);
  });
});
