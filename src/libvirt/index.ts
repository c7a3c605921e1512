// vfwire's typed libvirt binding (FFI to libvirt.so.0 through koffi). Importing this loads
// nothing; the library is loaded by the first openConnection().
//
//   const conn = await openConnection('qemu:///system');
//   try {
//     const dom = await conn.lookupDomainByUuid(uuid);
//     try {
//       await dom.attachDevice(xml, ModifyFlag.Live);
//     } finally {
//       dom.free();
//     }
//   } finally {
//     await conn.close();
//   }

export { Connection, openConnection, type DomainRef, type ListDomainsOptions } from './connection.js';
export { Domain, ModifyFlag, XmlFlag, type DomainState, type DomainStateName } from './domain.js';
export { ErrorCode, isLibvirtError, LibvirtError } from './errors.js';
