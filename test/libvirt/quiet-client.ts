// Child process for binding.test.ts: makes calls that fail inside libvirt and prints what it got
// as JSON on stdout. The test checks that libvirt printed nothing on stderr: libvirt's default
// error handler writes with fprintf from C, which process.stderr in the parent cannot see.
//
//   node dist/test/libvirt/quiet-client.js <uri> <defined-domain-name>

import { ModifyFlag, openConnection, type LibvirtError } from '../../src/libvirt/index.js';

const [uri = 'qemu:///system', name = ''] = process.argv.slice(2);
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 0,
    (err: LibvirtError) => err.code,
  );

const conn = await openConnection(uri);
const dom = await conn.lookupDomainByName(name);
const result = {
  badUri: await codeOf(openConnection('vfwt-bogus:///')),
  missing: await Promise.all(Array.from({ length: 5 }, (_, i) => codeOf(conn.lookupDomainByName(`vfwt-missing-${i}`)))),
  attachLive: await codeOf(dom.attachDevice('<interface type="ethernet"/>', ModifyFlag.Live)),
  metadata: await dom.getMetadata('https://vfwire.dev/xmlns/quiet-test'),
};
dom.free();
await conn.close();
process.stdout.write(JSON.stringify(result));
