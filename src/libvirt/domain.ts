// A libvirt domain handle (virDomainPtr). Daemon calls go through the owning Connection, which
// runs them one at a time and reads their errors (see connection.ts). Free a Domain when done;
// Connection.close() frees any still held.

import type { Connection } from './connection.js';
import { ErrorCode, isLibvirtError, isNegative, isNull, LibvirtError, threadError } from './errors.js';
import type { DomainPtr, Libvirt } from './ffi.js';

/** virDomainXMLFlags, for xmlDesc(). */
export enum XmlFlag {
  /** Include security-sensitive data (passwords). */
  Secure = 1 << 0,
  /** The persistent definition instead of the live one. */
  Inactive = 1 << 1,
  UpdateCpu = 1 << 2,
  Migratable = 1 << 3,
}

/**
 * virDomainModificationImpact (= virDomainDeviceModifyFlags without FORCE), for metadata and
 * device calls. Live and Config may be combined: `ModifyFlag.Live | ModifyFlag.Config`.
 */
export enum ModifyFlag {
  /** Live if the domain is running, else Config. */
  Current = 0,
  /** The running domain only; fails with OperationInvalid if it is not running. */
  Live = 1 << 0,
  /** The persistent definition only. */
  Config = 1 << 1,
}

/** virDomainState, by name (index = libvirt's number). */
const STATES = ['nostate', 'running', 'blocked', 'paused', 'shutdown', 'shutoff', 'crashed', 'pmsuspended'] as const;
export type DomainStateName = (typeof STATES)[number];

export interface DomainState {
  state: DomainStateName;
  /** The per-state reason enum (virDomainShutoffReason etc.); e.g. shutoff 2 = destroyed. */
  reason: number;
}

/** Domain[releaseNow]: for Connection.close(), not exported from index.ts. */
export const releaseNow = Symbol('releaseNow');

/** virDomainMetadataType: only the namespaced <metadata> element is used by vfwire. */
const METADATA_ELEMENT = 2;

export class Domain {
  #ptr: DomainPtr | null;
  /** Calls issued and not yet settled; free() waits for them. */
  #pending = 0;
  #freeRequested = false;

  /** Use Connection.lookupDomainByName() / lookupDomainByUuid(). */
  constructor(
    private readonly conn: Connection,
    private readonly lv: Libvirt,
    ptr: DomainPtr,
  ) {
    this.#ptr = ptr;
  }

  /** The domain's name (client-side, no daemon call). */
  name(): string {
    return domainName(this.lv, this.#live('virDomainGetName'));
  }

  /** The domain's UUID, lower-case with dashes (client-side, no daemon call). */
  uuid(): string {
    return domainUuid(this.lv, this.#live('virDomainGetUUIDString'));
  }

  /** The domain XML: live if running, unless `XmlFlag.Inactive`. */
  async xmlDesc(flags?: XmlFlag): Promise<string> {
    const xml = await this.#call('virDomainGetXMLDesc', (dom) => this.lv.virDomainGetXMLDesc(dom, flags ?? 0), isNull);
    return xml as string;
  }

  async state(): Promise<DomainState> {
    const state: [number] = [0];
    const reason: [number] = [0];
    await this.#call('virDomainGetState', (dom) => this.lv.virDomainGetState(dom, state, reason, 0), isNegative);
    return { state: STATES[state[0]] ?? 'nostate', reason: reason[0] };
  }

  /** The metadata element in namespace `uri`, serialized; null when the domain has none. */
  async getMetadata(uri: string, flags: ModifyFlag = ModifyFlag.Current): Promise<string | null> {
    try {
      return await this.#call(
        'virDomainGetMetadata',
        (dom) => this.lv.virDomainGetMetadata(dom, METADATA_ELEMENT, uri, flags),
        isNull,
      );
    } catch (err) {
      if (isLibvirtError(err, ErrorCode.NoDomainMetadata)) return null;
      throw err;
    }
  }

  /**
   * Sets the metadata element in namespace `uri` to `xml` (one element; libvirt re-prefixes it
   * with `key`), or removes it when `xml` is null.
   */
  async setMetadata(uri: string, key: string, xml: string | null, flags: ModifyFlag): Promise<void> {
    await this.#call(
      'virDomainSetMetadata',
      (dom) => this.lv.virDomainSetMetadata(dom, METADATA_ELEMENT, xml, key, uri, flags),
      isNegative,
    );
  }

  async attachDevice(xml: string, flags: ModifyFlag): Promise<void> {
    await this.#call(
      'virDomainAttachDeviceFlags',
      (dom) => this.lv.virDomainAttachDeviceFlags(dom, xml, flags),
      isNegative,
    );
  }

  async detachDevice(xml: string, flags: ModifyFlag): Promise<void> {
    await this.#call(
      'virDomainDetachDeviceFlags',
      (dom) => this.lv.virDomainDetachDeviceFlags(dom, xml, flags),
      isNegative,
    );
  }

  /** Stops the domain at once, like pulling the plug (virDomainDestroy). */
  async destroy(): Promise<void> {
    await this.#call('virDomainDestroy', (dom) => this.lv.virDomainDestroy(dom), isNegative);
  }

  /**
   * Releases the handle (virDomainFree). Idempotent. Calls made before this still complete
   * (the handle is released when the last settles); calls made after it throw
   * LibvirtError(InvalidDomain).
   */
  free(): void {
    if (this.#freeRequested) return;
    this.#freeRequested = true;
    if (this.#pending === 0) this.#release();
  }

  /**
   * Connection.close() only: releases now. Safe there because that connection runs no call at
   * the time, and calls still queued on it fail before touching the handle.
   */
  [releaseNow](): void {
    this.#freeRequested = true;
    this.#release();
  }

  #release(): void {
    const ptr = this.#ptr;
    this.#ptr = null;
    this.conn.forget(this);
    if (ptr !== null) this.lv.virDomainFree(ptr);
  }

  #live(fn: string): DomainPtr {
    if (this.#ptr === null || this.#freeRequested) throw freed(fn);
    return this.#ptr;
  }

  async #call<T>(fn: string, invoke: (dom: DomainPtr) => Promise<T>, failed: (result: T) => boolean): Promise<T> {
    this.#live(fn);
    this.#pending++;
    try {
      return await this.conn.call(
        fn,
        () => {
          if (this.#ptr === null) throw freed(fn);
          return invoke(this.#ptr);
        },
        failed,
      );
    } finally {
      this.#pending--;
      if (this.#freeRequested && this.#pending === 0) this.#release();
    }
  }
}

function freed(fn: string): LibvirtError {
  return new LibvirtError(ErrorCode.InvalidDomain, 0, 'the domain handle was freed', fn);
}

/** virDomainGetName: client-side; fails only for an invalid pointer. */
export function domainName(lv: Libvirt, ptr: DomainPtr): string {
  const name = lv.virDomainGetName(ptr);
  if (name === null) throw threadError(lv, 'virDomainGetName');
  return name;
}

/** virDomainGetUUIDString: client-side; fails only for an invalid pointer. */
export function domainUuid(lv: Libvirt, ptr: DomainPtr): string {
  const buf = Buffer.alloc(37); // VIR_UUID_STRING_BUFLEN: 36 characters and a NUL
  if (lv.virDomainGetUUIDString(ptr, buf) < 0) throw threadError(lv, 'virDomainGetUUIDString');
  return buf.toString('latin1', 0, 36);
}
