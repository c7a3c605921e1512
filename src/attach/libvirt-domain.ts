// The attach worker's view of libvirt, through vfwire's binding.

import { ErrorCode, isLibvirtError, ModifyFlag, openConnection } from '../libvirt/index.js';
import type { LiveDomain } from './worker.js';

export async function openLiveDomain(uri: string, uuid: string): Promise<LiveDomain> {
  const conn = await openConnection(uri);
  try {
    const dom = await conn.lookupDomainByUuid(uuid);
    return {
      attach: (xml) => dom.attachDevice(xml, ModifyFlag.Live),
      destroy: () => dom.destroy(),
      close: async () => {
        dom.free();
        await conn.close();
      },
    };
  } catch (err) {
    await conn.close();
    throw err;
  }
}

/**
 * While the start job still runs, libvirt answers a device change with "cannot acquire state
 * change lock" (a timeout) or, for a moment, "domain is not running".
 */
export function isRetryableAttachError(err: unknown): boolean {
  return isLibvirtError(err, ErrorCode.OperationTimeout, ErrorCode.OperationInvalid);
}
