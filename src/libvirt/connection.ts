// A libvirt connection: opening, domain lookups and listing, and the one place where daemon
// calls are issued and their errors read.
//
// Why errors are read the way they are. libvirt records an error in thread-local storage of the
// thread that made the failing call, and (for calls with a connection) copies it into the
// connection object (virDispatchError). koffi runs each async call on some worker thread of
// libuv's pool, and the promise resolves later on the main thread, so virGetLastError() there
// would read the main thread's slot, not the failed call's. The per-connection copy is
// thread-independent (virConnCopyLastError takes the connection's lock), but it is shared: two
// calls failing at once on one connection would overwrite each other. So each Connection runs
// its daemon calls one at a time, and a failed call's error is copied out of the connection
// before the next call starts. Callers may still fire many calls concurrently; they queue.
// (An error callback would not help: it gets no hint of which call failed, and a JS callback on a
// worker thread blocks that worker until the event loop runs it; see ffi.ts.)
//
// virConnectOpen is the exception: with no connection yet, its error exists only in the worker
// thread's slot. So a failed async open is repeated once synchronously on this thread, where
// virCopyLastError is correct. Opens that fail usually fail fast (no socket, no permission, bad
// URI), so this rarely blocks; the successful path never does.

import { Domain, domainName, domainUuid, releaseNow } from './domain.js';
import { connectionError, ErrorCode, isNegative, isNull, LibvirtError, threadError } from './errors.js';
import { loadLibvirt, type ConnectPtr, type DomainPtr, type Libvirt } from './ffi.js';

/** virConnectListAllDomainsFlags */
enum ListFlag {
  Active = 1 << 0,
  Inactive = 1 << 1,
}

/** virDomainDefineFlags VIR_DOMAIN_DEFINE_VALIDATE. */
const DEFINE_VALIDATE = 1 << 0;

export interface DomainRef {
  name: string;
  uuid: string;
}

export interface ListDomainsOptions {
  /** true: running domains only; false: defined but not running only; unset: both. */
  active?: boolean;
}

/** Opens a connection to libvirt; close it with `close()`. */
export async function openConnection(uri = 'qemu:///system'): Promise<Connection> {
  const lv = await loadLibvirt();
  const ptr = (await lv.virConnectOpen(uri)) ?? lv.virConnectOpenSync(uri);
  if (ptr === null) throw threadError(lv, 'virConnectOpen');
  return new Connection(lv, ptr, uri);
}

export class Connection {
  #ptr: ConnectPtr | null;
  #tail: Promise<unknown> = Promise.resolve();
  /** Domains handed out and not yet freed; close() frees them. */
  readonly #domains = new Set<Domain>();

  /** Use openConnection(). */
  constructor(
    private readonly lv: Libvirt,
    ptr: ConnectPtr,
    readonly uri: string,
  ) {
    this.#ptr = ptr;
  }

  get closed(): boolean {
    return this.#ptr === null;
  }

  /** The domain named `name`; throws LibvirtError(NoDomain) if there is none. Free it when done. */
  lookupDomainByName(name: string): Promise<Domain> {
    return this.#lookup('virDomainLookupByName', (conn) => this.lv.virDomainLookupByName(conn, name));
  }

  /** The domain with this UUID (any case, with or without dashes); free it when done. */
  lookupDomainByUuid(uuid: string): Promise<Domain> {
    return this.#lookup('virDomainLookupByUUIDString', (conn) => this.lv.virDomainLookupByUUIDString(conn, uuid));
  }

  /**
   * Defines (or redefines, same name and UUID) a persistent domain from `xml`, checked against
   * libvirt's schema (VIR_DOMAIN_DEFINE_VALIDATE), as `virsh edit` does. Free it when done.
   */
  defineXml(xml: string): Promise<Domain> {
    return this.#lookup('virDomainDefineXMLFlags', (conn) =>
      this.lv.virDomainDefineXMLFlags(conn, xml, DEFINE_VALIDATE),
    );
  }

  /** Names and UUIDs of the domains, every libvirt object freed before this returns. */
  async listDomains(opts: ListDomainsOptions = {}): Promise<DomainRef[]> {
    const flags = opts.active === undefined ? 0 : opts.active ? ListFlag.Active : ListFlag.Inactive;
    const { lv } = this;
    const out: [bigint | null] = [null];
    const count = await this.call(
      'virConnectListAllDomains',
      (conn) => lv.virConnectListAllDomains(conn, out, flags),
      isNegative,
    );
    const array = out[0];
    if (array === null) return [];
    const ptrs = count > 0 ? (lv.koffi.decode(array, lv.koffi.array('void *', count)) as DomainPtr[]) : [];
    try {
      return ptrs.map((ptr) => ({ name: domainName(lv, ptr), uuid: domainUuid(lv, ptr) }));
    } finally {
      for (const ptr of ptrs) lv.virDomainFree(ptr);
      lv.koffi.free(array);
    }
  }

  /**
   * Waits for queued calls, frees domains still held, and closes the connection. Idempotent.
   * Errors from the close itself are not thrown: there is nothing a caller could do about them.
   */
  async close(): Promise<void> {
    await this.#serial(async () => {
      const ptr = this.#ptr;
      if (ptr === null) return;
      for (const dom of this.#domains) dom[releaseNow]();
      this.#ptr = null;
      await this.lv.virConnectClose(ptr);
    });
  }

  /**
   * Runs one daemon call on koffi's worker pool, after every call queued before it, and throws
   * the connection's error if `failed(result)`. For Domain; not part of the public API.
   */
  call<T>(fn: string, invoke: (conn: ConnectPtr) => Promise<T>, failed: (result: T) => boolean): Promise<T> {
    return this.#serial(async () => {
      const conn = this.#ptr;
      if (conn === null)
        throw new LibvirtError(ErrorCode.InvalidConn, 0, `the connection to ${this.uri} is closed`, fn);
      this.lv.virConnResetLastError(conn);
      const result = await invoke(conn);
      if (failed(result)) throw connectionError(this.lv, conn, fn);
      return result;
    });
  }

  /** Called by Domain.free(). */
  forget(dom: Domain): void {
    this.#domains.delete(dom);
  }

  // The Domain is created inside the call's turn, so a close() queued behind it frees it too.
  #lookup(fn: string, lookup: (conn: ConnectPtr) => Promise<DomainPtr | null>): Promise<Domain> {
    const adopt = async (conn: ConnectPtr) => {
      const ptr = await lookup(conn);
      if (ptr === null) return null;
      const dom = new Domain(this, this.lv, ptr);
      this.#domains.add(dom);
      return dom;
    };
    return this.call(fn, adopt, isNull) as Promise<Domain>;
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(task);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}
