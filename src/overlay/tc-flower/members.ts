// A tc-flower VNI's members as its rules need them, read from the ledger.

import type { LedgerData, Lease } from '../../ledger/types.js';
import type { TcMember, TcVniState } from './model.js';

export function tcMember(l: Lease): TcMember {
  return { leaseKey: l.key, rep: l.rep, mac: l.mac, pci: l.pci };
}

/** A VNI as its tc rules see it: its peers and its members, from the ledger. */
export function tcVniStateOf(ledger: LedgerData, vni: number): TcVniState {
  return { vni, peers: ledger.vnis[String(vni)]?.peers ?? [], members: tcMembersOf(ledger, vni) };
}

/** Members in the order the ledger keeps them, which fixes the replication lists' order. */
export function tcMembersOf(ledger: LedgerData, vni: number): TcMember[] {
  return (ledger.vnis[String(vni)]?.members ?? []).flatMap((key) => {
    const lease = ledger.leases[key];
    return lease ? [tcMember(lease)] : [];
  });
}
