// A tc-flower VNI's members as its rules need them, read from the ledger.

import type { LedgerData, Lease } from '../ledger/types.js';
import type { TcMember } from '../overlay/tc-flower.js';

export function tcMember(l: Lease): TcMember {
  return { leaseKey: l.key, rep: l.rep, mac: l.mac, pci: l.pci };
}

/** Members in the order the ledger keeps them, which fixes the replication lists' order. */
export function tcMembersOf(ledger: LedgerData, vni: number): TcMember[] {
  return (ledger.vnis[String(vni)]?.members ?? []).flatMap((key) => {
    const lease = ledger.leases[key];
    return lease ? [tcMember(lease)] : [];
  });
}
