// What one `ipsec watch` round found and did, per peer (or about the underlay itself).

export interface WatchFinding {
  peer: string;
  /** What the kernel had lost (empty when the peer moved first). */
  lost: string[];
  action: string;
  /** Everything is in place again. */
  recovered: boolean;
}

/** The `peer` of a finding about the underlay itself (pf-switch). */
export const UNDERLAY = '(underlay)';
