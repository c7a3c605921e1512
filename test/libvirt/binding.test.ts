// The libvirt binding against the real daemon at qemu:///system: a defined (never started)
// domain for lookups, XML, state, metadata, errors and concurrency; and, where QEMU can run, a
// started diskless domain for a live attach and destroy. Every domain and tap is removed in
// after(), even when a test failed.

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import {
  ErrorCode,
  isLibvirtError,
  LibvirtError,
  ModifyFlag,
  openConnection,
  XmlFlag,
  type Connection,
  type Domain,
} from '../../src/libvirt/index.js';
import {
  defineDiskless,
  defineDomain,
  LIBVIRT_URI,
  libvirtReachable,
  removeDomain,
  virsh,
} from '../../src/sim/libvirtd.js';

const NS = 'https://vfwire.dev/xmlns/1.0';
const QEMU = '/usr/bin/qemu-system-x86_64';
const here = dirname(fileURLToPath(import.meta.url));
const suffix = () => randomBytes(3).toString('hex');

/** The rejection of `p`, which must be a LibvirtError. */
async function rejection(p: Promise<unknown>): Promise<LibvirtError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the call should have failed').to.be.instanceOf(LibvirtError);
  return err as LibvirtError;
}

describe('libvirt binding (libvirtd)', function () {
  this.timeout(60_000);
  const name = `vfwt-${suffix()}`;
  const xmlDir = mkdtempSync(join(tmpdir(), 'vfwt-'));
  let conn: Connection;
  let dom: Domain;

  before(async function () {
    if (!(await libvirtReachable())) {
      // CI starts libvirtd (scripts/bootstrap.sh); elsewhere say why this suite did not run.
      if (process.env.CI) throw new Error('libvirtd is not reachable at qemu:///system');
      console.log(
        '    (skipped: libvirtd is not reachable at qemu:///system; start it with `virtlogd -d; libvirtd -d`)',
      );
      this.skip();
    }
    await defineDomain(
      xmlDir,
      name,
      `<domain type="qemu"><name>${name}</name><memory unit="MiB">64</memory><os><type arch="x86_64">hvm</type></os></domain>`,
    );
    conn = await openConnection(LIBVIRT_URI);
    dom = await conn.lookupDomainByName(name);
  });

  after(async () => {
    await conn?.close();
    await virsh('undefine', name);
    rmSync(xmlDir, { recursive: true, force: true });
  });

  it('loads neither koffi nor libvirt.so.0 on import', async () => {
    const script = `await import(${JSON.stringify(join(here, '../../src/libvirt/index.js'))});
      process.stdout.write(require('node:fs').readFileSync('/proc/self/maps', 'utf8'));`;
    const maps = (await execa('node', ['--input-type=commonjs', '-e', `(async () => { ${script} })()`])).stdout;
    expect(maps).to.include('node');
    expect(maps).not.to.match(/libvirt\.so|koffi/);
  });

  it('looks a domain up by name and by UUID', async () => {
    const uuid = (await virsh('domuuid', name)).stdout.trim();
    expect(dom.name()).to.equal(name);
    expect(dom.uuid()).to.equal(uuid);
    const byUuid = await conn.lookupDomainByUuid(uuid.toUpperCase());
    try {
      expect(byUuid.name()).to.equal(name);
      expect(byUuid.uuid()).to.equal(uuid);
    } finally {
      byUuid.free();
    }
  });

  it("throws LibvirtError(NoDomain) with libvirt's message for a missing domain", async () => {
    const err = await rejection(conn.lookupDomainByName(`${name}-missing`));
    expect(err.code).to.equal(ErrorCode.NoDomain).and.to.equal(42);
    expect(err.domain).to.be.greaterThan(0);
    expect(err.message).to.equal(`Domain not found: no domain with matching name '${name}-missing'`);
    expect(err.call).to.equal('virDomainLookupByName');
    expect(isLibvirtError(err, ErrorCode.NoDomain)).to.equal(true);
    expect(isLibvirtError(err, ErrorCode.OperationInvalid)).to.equal(false);
    const byUuid = await rejection(conn.lookupDomainByUuid('00000000-0000-4000-8000-000000000000'));
    expect(byUuid.code).to.equal(ErrorCode.NoDomain);
  });

  it('reads the XML and the state of a shut-off domain', async () => {
    expect(await dom.xmlDesc()).to.include(`<name>${name}</name>`);
    expect(await dom.xmlDesc(XmlFlag.Inactive)).to.include(`<name>${name}</name>`);
    expect(await dom.state()).to.deep.equal({ state: 'shutoff', reason: 0 });
  });

  it('sets, reads and removes vfwire metadata (CONFIG), null when absent', async () => {
    expect(await dom.getMetadata(NS)).to.equal(null);
    await dom.setMetadata(NS, 'vfwire', '<net><interface vni="100"/></net>', ModifyFlag.Config);
    const md = await dom.getMetadata(NS, ModifyFlag.Config);
    expect(md?.replace(/\s+/g, '')).to.equal('<net><interfacevni="100"/></net>');
    expect(await dom.xmlDesc(XmlFlag.Inactive)).to.match(
      /<vfwire:net xmlns:vfwire="https:\/\/vfwire.dev\/xmlns\/1.0">/,
    );
    await dom.setMetadata(NS, 'vfwire', null, ModifyFlag.Config);
    expect(await dom.getMetadata(NS)).to.equal(null);
    expect(await dom.xmlDesc(XmlFlag.Inactive)).not.to.include(NS);
  });

  it('lists the domain among inactive ones, not among active ones', async () => {
    const uuid = dom.uuid();
    expect(await conn.listDomains()).to.deep.include({ name, uuid });
    expect(await conn.listDomains({ active: false })).to.deep.include({ name, uuid });
    expect((await conn.listDomains({ active: true })).map((d) => d.name)).not.to.include(name);
  });

  it('refuses a LIVE attach on a shut-off domain with OperationInvalid', async () => {
    const err = await rejection(
      dom.attachDevice('<interface type="ethernet"><model type="virtio"/></interface>', ModifyFlag.Live),
    );
    expect(err.code).to.equal(ErrorCode.OperationInvalid);
    expect(err.message).to.match(/domain is not running/);
    expect(err.call).to.equal('virDomainAttachDeviceFlags');
  });

  it('attaches and detaches a device in the persistent definition (CONFIG)', async () => {
    const nic = '<interface type="ethernet"><mac address="52:54:00:0f:e1:01"/><model type="virtio"/></interface>';
    await dom.attachDevice(nic, ModifyFlag.Config);
    expect(await dom.xmlDesc(XmlFlag.Inactive)).to.include('52:54:00:0f:e1:01');
    await dom.detachDevice(nic, ModifyFlag.Config);
    expect(await dom.xmlDesc(XmlFlag.Inactive)).not.to.include('52:54:00:0f:e1:01');
    const err = await rejection(dom.detachDevice(nic, ModifyFlag.Config));
    expect(err.code).to.equal(ErrorCode.DeviceMissing);
  });

  it('gives each of 20 concurrent calls its own result or error, without blocking the event loop', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('event loop'));
    const calls = Array.from({ length: 20 }, (_, i) => {
      switch (i % 4) {
        case 0:
          return conn.lookupDomainByName(`${name}-missing-${i}`).then(
            (d) => (d.free(), 'found?!'),
            (e: LibvirtError) => `${e.code} ${e.message}`,
          );
        case 1:
          return dom.xmlDesc().then((xml) => (xml.includes(`<name>${name}</name>`) ? 'xml' : 'wrong xml'));
        case 2:
          return dom.attachDevice('<interface type="ethernet"/>', ModifyFlag.Live).then(
            () => 'attached?!',
            (e: LibvirtError) => `${e.code}`,
          );
        default:
          return conn.lookupDomainByName(name).then((d) => {
            const got = d.name();
            d.free();
            return got;
          });
      }
    });
    // A connection runs its calls one at a time on a worker thread: the loop turns between them,
    // so the immediate runs before the last result arrives (a blocking binding would finish all
    // twenty first). The first call alone may finish before it: that is no proof either way.
    const results = await Promise.all(calls);
    order.push('all calls');
    expect(order).to.deep.equal(['event loop', 'all calls']);
    results.forEach((r, i) => {
      const want = [
        `42 Domain not found: no domain with matching name '${name}-missing-${i}'`,
        'xml',
        `${ErrorCode.OperationInvalid}`,
        name,
      ][i % 4];
      expect(r, `call ${i}`).to.equal(want);
    });
  });

  it('prints nothing on stderr when libvirt calls fail', async () => {
    const client = join(here, 'quiet-client.js');
    const r = await execa('node', [client, LIBVIRT_URI, name], { reject: false });
    expect(r.stderr).to.equal('');
    expect(r.exitCode).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.equal({
      badUri: ErrorCode.NoConnect,
      missing: [42, 42, 42, 42, 42],
      attachLive: ErrorCode.OperationInvalid,
      metadata: null,
    });
  });

  it('refuses calls on a freed domain and on a closed connection', async () => {
    const other = await openConnection(LIBVIRT_URI);
    const d = await other.lookupDomainByName(name);
    const pending = d.xmlDesc();
    d.free(); // calls made before free() still complete
    expect(await pending).to.include(name);
    expect(() => d.name())
      .to.throw(LibvirtError)
      .with.property('code', ErrorCode.InvalidDomain);
    expect((await rejection(d.state())).code).to.equal(ErrorCode.InvalidDomain);
    d.free(); // idempotent

    const kept = await other.lookupDomainByName(name);
    await other.close(); // frees `kept`
    expect(other.closed).to.equal(true);
    expect(() => kept.uuid()).to.throw(LibvirtError);
    expect((await rejection(other.listDomains())).code).to.equal(ErrorCode.InvalidConn);
    await other.close(); // idempotent
  });

  it("reports a failed open with libvirt's error", async () => {
    const err = await rejection(openConnection('vfwt-bogus:///'));
    expect(err.code).to.equal(ErrorCode.NoConnect);
    expect(err.message).to.match(/no connection driver available for vfwt-bogus:\/\/\//);
    expect(err.call).to.equal('virConnectOpen');
  });

  describe('on a running domain', function () {
    const live = `vfwt-${suffix()}`;
    const tap = `vfwt-t${suffix()}`;
    let ldom: Domain | undefined;

    before(async function () {
      if (!existsSync(QEMU)) {
        console.log(`      (skipped: ${QEMU} is not installed)`);
        this.skip();
      }
      // Diskless TCG guest; ACPI (on by default) is what lets the `pc` machine hotplug PCI devices.
      await defineDiskless(xmlDir, { name: live, type: 'qemu' });
      const started = await virsh('start', live);
      expect(started.exitCode, started.stderr).to.equal(0);
      await execa('ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
      ldom = await conn.lookupDomainByName(live);
    });

    after(async () => {
      ldom?.free();
      await removeDomain(live);
      await execa('ip', ['link', 'del', tap], { reject: false });
    });

    it('attaches an interface LIVE and destroys the domain', async () => {
      const d = ldom as Domain;
      expect((await d.state()).state).to.equal('running');
      await d.attachDevice(
        `<interface type="ethernet"><target dev="${tap}" managed="no"/><model type="virtio"/></interface>`,
        ModifyFlag.Live,
      );
      expect(await d.xmlDesc()).to.include(`<target dev='${tap}' managed='no'/>`);
      expect(await d.xmlDesc(XmlFlag.Inactive)).not.to.include(tap);
      expect((await conn.listDomains({ active: true })).map((x) => x.name)).to.include(live);

      await d.destroy();
      expect(await d.state()).to.deep.equal({ state: 'shutoff', reason: 2 }); // VIR_DOMAIN_SHUTOFF_DESTROYED
      expect((await rejection(d.destroy())).code).to.equal(ErrorCode.OperationInvalid);
    });
  });
});
