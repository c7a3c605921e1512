// Raw libvirt declarations over koffi (https://koffi.dev), loaded on first use. Importing this
// module loads neither koffi's addon nor libvirt.so.0: the hook's hot path may import code that
// imports this, and a VM without vfwire metadata must cost next to nothing.
//
// Only what vfwire uses is declared. Calls that talk to the daemon are bound as koffi async calls
// (they run on koffi's worker threads and resolve on the event loop); calls that only touch
// client-side memory are bound sync.

import { requireDependency } from '../program-files.js';
import { promisify } from 'node:util';
import type { TypeObject } from 'koffi';

type Koffi = typeof import('koffi');

/** C pointers as koffi 3 passes them (BigInt addresses), branded so they cannot be mixed up. */
export type ConnectPtr = bigint & { readonly __brand: 'virConnectPtr' };
export type DomainPtr = bigint & { readonly __brand: 'virDomainPtr' };
export type ErrorPtr = bigint & { readonly __brand: 'virErrorPtr' };

/** The fields of libvirt's `struct _virError` that vfwire reads. */
export interface RawError {
  code: number;
  domain: number;
  message: string | null;
}

export interface Libvirt {
  koffi: Koffi;
  /** `struct _virError`, for koffi.alloc/decode. */
  virError: TypeObject;

  // Daemon round-trips (async).
  virConnectOpen(uri: string): Promise<ConnectPtr | null>;
  virConnectClose(conn: ConnectPtr): Promise<number>;
  /** `domains` receives a malloc'd array of virDomainPtr: free each, then the array. */
  virConnectListAllDomains(conn: ConnectPtr, domains: [bigint | null], flags: number): Promise<number>;
  virDomainLookupByName(conn: ConnectPtr, name: string): Promise<DomainPtr | null>;
  virDomainLookupByUUIDString(conn: ConnectPtr, uuid: string): Promise<DomainPtr | null>;
  /** The returned string is malloc'd by libvirt; the binding frees it after copying. */
  virDomainGetXMLDesc(dom: DomainPtr, flags: number): Promise<string | null>;
  virDomainGetState(dom: DomainPtr, state: [number], reason: [number], flags: number): Promise<number>;
  /** The returned string is malloc'd by libvirt; the binding frees it after copying. */
  virDomainGetMetadata(dom: DomainPtr, type: number, uri: string, flags: number): Promise<string | null>;
  virDomainSetMetadata(
    dom: DomainPtr,
    type: number,
    metadata: string | null,
    key: string | null,
    uri: string,
    flags: number,
  ): Promise<number>;
  virDomainAttachDeviceFlags(dom: DomainPtr, xml: string, flags: number): Promise<number>;
  virDomainDetachDeviceFlags(dom: DomainPtr, xml: string, flags: number): Promise<number>;
  virDomainDestroy(dom: DomainPtr): Promise<number>;
  virDomainDefineXMLFlags(conn: ConnectPtr, xml: string, flags: number): Promise<DomainPtr | null>;

  // Local calls (sync).
  /** Blocking open, only used to learn why an async open failed (see connection.ts). */
  virConnectOpenSync(uri: string): ConnectPtr | null;
  virDomainFree(dom: DomainPtr): number;
  /** The name is owned by the virDomainPtr: no free. */
  virDomainGetName(dom: DomainPtr): string | null;
  /** Writes 36 characters and a NUL into `buf` (VIR_UUID_STRING_BUFLEN = 37). */
  virDomainGetUUIDString(dom: DomainPtr, buf: Buffer): number;
  virConnCopyLastError(conn: ConnectPtr, to: ErrorPtr): number;
  virConnResetLastError(conn: ConnectPtr): void;
  virCopyLastError(to: ErrorPtr): number;
  virResetError(err: ErrorPtr): void;
}

let cached: Promise<Libvirt> | undefined;

/** Loads koffi and libvirt.so.0 once per process. */
export function loadLibvirt(): Promise<Libvirt> {
  cached ??= load();
  return cached;
}

async function load(): Promise<Libvirt> {
  const koffi = requireDependency<Koffi>('koffi');
  // koffi runs each async call on a stack of its own, 128 KiB by default; libvirt's client
  // (config parsing, RPC, gettext) is not written for small stacks, so give it 1 MiB. Pages
  // that are never touched cost nothing. koffi only accepts this before its first load().
  try {
    koffi.config({ ...koffi.config(), async_stack_size: 1024 * 1024 });
  } catch {
    // Another module loaded a library first: keep koffi's default.
  }
  let lib;
  try {
    lib = koffi.load('libvirt.so.0');
  } catch (cause) {
    throw new Error('cannot load libvirt.so.0 (is the libvirt0 package installed?)', { cause });
  }

  const virError = koffi.struct({
    code: 'int',
    domain: 'int',
    message: 'char *',
    level: 'int',
    conn: 'void *',
    dom: 'void *',
    str1: 'char *',
    str2: 'char *',
    str3: 'char *',
    int1: 'int',
    int2: 'int',
    net: 'void *',
  });

  // koffi's async form takes a Node-style callback last; promisify turns it into a Promise.
  const sync = (decl: string) => lib.func(decl);
  const async = (decl: string) => promisify(lib.func(decl).async);

  // Silence libvirt's default error handler, which prints every error to stderr. It needs a
  // non-NULL handler (NULL means "print"), and the handler runs synchronously on whichever
  // thread raised the error: koffi's workers during async calls. A JS callback there would
  // block that worker until the event loop runs it, which can hang exit (libuv joins its
  // threads) or deadlock when the main thread waits. So the handler is native code that does
  // nothing: libvirt calls handler(userData, err) with userData = NULL, i.e. virResetError(NULL),
  // which returns at once. The extra `err` argument is harmless: on the SysV x86-64 and AArch64
  // ABIs arguments travel in registers and the caller cleans up (GLib signal handlers rely on
  // the same). Errors are read explicitly instead (connection.ts).
  const virSetErrorFunc = sync('void virSetErrorFunc(void *userData, void *handler)');
  virSetErrorFunc(null, lib.symbol('virResetError'));

  const types = { koffi, virError };
  const fns = {
    virConnectOpen: async('void *virConnectOpen(const char *name)'),
    virConnectClose: async('int virConnectClose(void *conn)'),
    virConnectListAllDomains: async(
      'int virConnectListAllDomains(void *conn, _Out_ void **domains, unsigned int flags)',
    ),
    virDomainLookupByName: async('void *virDomainLookupByName(void *conn, const char *name)'),
    virDomainLookupByUUIDString: async('void *virDomainLookupByUUIDString(void *conn, const char *uuidstr)'),
    // `char *!` is koffi's disposable string: copied to JS, then the C string is free()d.
    virDomainGetXMLDesc: async('char *! virDomainGetXMLDesc(void *domain, unsigned int flags)'),
    virDomainGetState: async(
      'int virDomainGetState(void *domain, _Out_ int *state, _Out_ int *reason, unsigned int flags)',
    ),
    virDomainGetMetadata: async(
      'char *! virDomainGetMetadata(void *domain, int type, const char *uri, unsigned int flags)',
    ),
    virDomainSetMetadata: async(
      'int virDomainSetMetadata(void *domain, int type, const char *metadata, const char *key, const char *uri, unsigned int flags)',
    ),
    virDomainAttachDeviceFlags: async(
      'int virDomainAttachDeviceFlags(void *domain, const char *xml, unsigned int flags)',
    ),
    virDomainDetachDeviceFlags: async(
      'int virDomainDetachDeviceFlags(void *domain, const char *xml, unsigned int flags)',
    ),
    virDomainDestroy: async('int virDomainDestroy(void *domain)'),
    virDomainDefineXMLFlags: async('void *virDomainDefineXMLFlags(void *conn, const char *xml, unsigned int flags)'),

    virConnectOpenSync: sync('void *virConnectOpen(const char *name)'),
    virDomainFree: sync('int virDomainFree(void *domain)'),
    virDomainGetName: sync('const char *virDomainGetName(void *domain)'),
    virDomainGetUUIDString: sync('int virDomainGetUUIDString(void *domain, void *buf)'),
    virConnCopyLastError: sync('int virConnCopyLastError(void *conn, void *to)'),
    virConnResetLastError: sync('void virConnResetLastError(void *conn)'),
    virCopyLastError: sync('int virCopyLastError(void *to)'),
    virResetError: sync('void virResetError(void *err)'),
  };
  // The declarations above are the C prototypes of the Libvirt interface, one for one.
  return { ...types, ...fns } as unknown as Libvirt;
}
