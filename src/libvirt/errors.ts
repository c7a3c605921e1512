// libvirt errors as JS errors. How and when they are read (the thread question) is explained in
// connection.ts; this file only copies an error out of libvirt and frees libvirt's copy.

import type { ConnectPtr, ErrorPtr, Libvirt, RawError } from './ffi.js';

/**
 * The virErrorNumber values vfwire branches on (include/libvirt/virterror.h; the numbers are
 * part of libvirt's ABI and never change).
 */
export enum ErrorCode {
  /** VIR_ERR_INTERNAL_ERROR */
  InternalError = 1,
  /** VIR_ERR_NO_SUPPORT: the driver lacks this call. */
  NoSupport = 3,
  /** VIR_ERR_NO_CONNECT: no driver for the URI. */
  NoConnect = 5,
  /** VIR_ERR_INVALID_CONN: also thrown by vfwire for a call on a closed Connection. */
  InvalidConn = 6,
  /** VIR_ERR_INVALID_DOMAIN: also thrown by vfwire for a call on a freed Domain. */
  InvalidDomain = 7,
  /** VIR_ERR_INVALID_ARG */
  InvalidArg = 8,
  /** VIR_ERR_OPERATION_FAILED: the hypervisor refused, e.g. QEMU failed a hotplug. */
  OperationFailed = 9,
  /** VIR_ERR_XML_ERROR: malformed or invalid XML. */
  XmlError = 27,
  /** VIR_ERR_SYSTEM_ERROR: a system call failed, e.g. the daemon socket is missing. */
  SystemError = 38,
  /** VIR_ERR_NO_DOMAIN: no such domain, or it disappeared. */
  NoDomain = 42,
  /** VIR_ERR_OPERATION_INVALID: not applicable now, e.g. LIVE on a shut-off domain. */
  OperationInvalid = 55,
  /** VIR_ERR_CONFIG_UNSUPPORTED */
  ConfigUnsupported = 67,
  /** VIR_ERR_OPERATION_TIMEOUT: e.g. the domain's job lock is still held by a start job. */
  OperationTimeout = 68,
  /** VIR_ERR_NO_DOMAIN_METADATA: the domain has no metadata element for that URI. */
  NoDomainMetadata = 80,
  /** VIR_ERR_OPERATION_UNSUPPORTED */
  OperationUnsupported = 84,
  /** VIR_ERR_DEVICE_MISSING: e.g. detaching a device the domain does not have. */
  DeviceMissing = 99,
}

export class LibvirtError extends Error {
  override name = 'LibvirtError';

  /**
   * @param code    virErrorNumber (see ErrorCode)
   * @param domain  virErrorDomain: the part of libvirt that raised it (10 = QEMU driver, ...)
   * @param message libvirt's own message, unchanged
   * @param call    the C function that failed, for logs
   */
  constructor(
    readonly code: number,
    readonly domain: number,
    message: string,
    readonly call: string,
  ) {
    super(message);
  }
}

/** True when `err` is a LibvirtError with one of `codes` (any code when none are given). */
export function isLibvirtError(err: unknown, ...codes: ErrorCode[]): err is LibvirtError {
  return err instanceof LibvirtError && (codes.length === 0 || codes.includes(err.code));
}

/** libvirt's failure conventions: a NULL pointer, or a negative int. */
export function isNull(result: unknown): boolean {
  return result === null;
}

export function isNegative(result: number): boolean {
  return result < 0;
}

/** The last error libvirt recorded on `conn` (virConnCopyLastError). */
export function connectionError(lv: Libvirt, conn: ConnectPtr, call: string): LibvirtError {
  return copyError(lv, call, (to) => lv.virConnCopyLastError(conn, to));
}

/** The last error of the calling thread (virCopyLastError); only right after a sync call. */
export function threadError(lv: Libvirt, call: string): LibvirtError {
  return copyError(lv, call, (to) => lv.virCopyLastError(to));
}

function copyError(lv: Libvirt, call: string, copy: (to: ErrorPtr) => number): LibvirtError {
  const to = lv.koffi.alloc(lv.virError, 1) as ErrorPtr;
  try {
    copy(to);
    const raw = lv.koffi.decode(to, lv.virError) as RawError;
    if (raw.code === 0)
      return new LibvirtError(ErrorCode.InternalError, 0, `${call} failed and libvirt recorded no error`, call);
    return new LibvirtError(raw.code, raw.domain, raw.message ?? `${call} failed`, call);
  } finally {
    lv.virResetError(to); // frees the strings the copy duplicated
    lv.koffi.free(to);
  }
}
