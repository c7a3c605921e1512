// Underlay admission: a VNI's VXLAN is taken only from the peers configured for that VNI, and,
// with IPsec on, only when it arrived through that peer's inbound SA. The kernel does not do
// this itself: the VXLAN socket's encap_rcv runs before the UDP receive path's xfrm policy check
// (net/ipv4/udp.c udp_queue_rcv_one_skb), so an IPsec in-policy does not stop plaintext VXLAN,
// and a VXLAN device takes any source address for its VNI. So: nftables, in the netns of the
// VXLAN socket, one chain per VNI, reached through a map keyed by the VNI in the VXLAN header.
//
// - VNIs vfwire does not own miss the map and pass: other VXLAN users on the host are untouched.
// - The SA is told by its reqid (stable across key epochs, sa-ids.ts), not by the SA's
//   addresses: nft reads those only from tunnel or BEET mode states
//   (net/netfilter/nft_xfrm.c xfrm_state_addr_ok), and vfwire's SAs are transport mode. A packet
//   without a secpath never matches `ipsec in` (nft_xfrm_get_eval_in: NFT_BREAK).
// - Hardware decryption keeps this working: mlx5 puts the SA into the skb's secpath
//   (drivers/net/ethernet/mellanox/mlx5/core/en_accel/ipsec_rxtx.c
//   mlx5e_ipsec_offload_handle_rx_skb).
// - Every script is one nft transaction, so a chain is never seen half written, and `add` of
//   what exists is a no-op: the same script creates a VNI's chain or rewrites it. One line,
//   commands separated by `;`, so a plan shows it as it runs.

import { nft } from '../exec/tools.js';
import type { Step } from '../plan/step.js';
import { VXLAN_PORT } from './names.js';

export const ADMISSION_TABLE = 'vfwire';
const FAMILY = 'inet';
const MAP = 'vxlan_vnis';
/** The VNI: after UDP's 8 bytes and the VXLAN flags and reserved bytes (RFC 7348 section 5). */
const VNI_FIELD = '@th,96,24';

export interface AdmissionPeer {
  address: string;
  /** With IPsec: the reqid of this peer's inbound SA; its VXLAN must have come through it. */
  reqid?: number;
}

const chainOf = (vni: number) => `vni_${vni}`;
const t = `${FAMILY} ${ADMISSION_TABLE}`;

/** The table, its map and the input hook that dispatches on the VNI. */
function base(): string[] {
  return [
    `add table ${t}`,
    `add map ${t} ${MAP} { typeof ${VNI_FIELD} : verdict ; }`,
    `add chain ${t} input { type filter hook input priority filter - 10 ; policy accept ; }`,
    `flush chain ${t} input`,
    `add rule ${t} input udp dport ${VXLAN_PORT} ${VNI_FIELD} vmap @${MAP}`,
  ];
}

/** The nft script that makes the VNI's chain admit exactly these peers and drop the rest. */
export function admissionScript(vni: number, peers: AdmissionPeer[]): string {
  const c = chainOf(vni);
  const accept = peers.map((p) => `add rule ${t} ${c} ip saddr ${p.address}${p.reqid === undefined ? '' : ` ipsec in reqid ${p.reqid}`} accept`);
  return [...base(), `add chain ${t} ${c}`, `flush chain ${t} ${c}`, ...accept, `add rule ${t} ${c} counter drop`, `add element ${t} ${MAP} { ${vni} : jump ${c} }`].join('; ') + '\n';
}

/** Removes the VNI's chain; adds first what it deletes, so it also succeeds when half is gone. */
export function admissionRemoveScript(vni: number): string {
  const c = chainOf(vni);
  return [...base(), `add chain ${t} ${c}`, `add element ${t} ${MAP} { ${vni} : jump ${c} }`, `delete element ${t} ${MAP} { ${vni} }`, `delete chain ${t} ${c}`].join('; ') + '\n';
}

/**
 * The VNI's admission, before its VXLAN device exists (a first member) or before its peers
 * change (a live VNI under a new config, so a removed peer is refused before it loses its FDB
 * entry). Undone with the VNI.
 */
export function renderAdmission(netns: string | undefined, vni: number, peers: AdmissionPeer[], opts: { withUndo: boolean }): Step {
  return {
    kind: 'admission',
    device: `${t} ${chainOf(vni)}`,
    owner: { kind: 'vni', vni },
    do: { argv: nft(netns, '-f', '-'), stdin: admissionScript(vni, peers), inputShown: true },
    ...(opts.withUndo ? { undo: { argv: nft(netns, '-f', '-'), stdin: admissionRemoveScript(vni), inputShown: true } } : {}),
  };
}

/** What `nft -j list table inet vfwire` shows: the input hook, and per VNI in the map the peers its chain accepts. */
export interface AdmissionState {
  hooked: boolean;
  vnis: Map<number, string[]>;
}

type NftItem = {
  map?: { name: string; elem?: [unknown, { jump?: { target: string } }][] };
  chain?: { name: string; hook?: string };
  rule?: { chain: string; expr: { match?: { left?: { payload?: { field?: string } }; right?: unknown }; accept?: null }[] };
};

export function parseAdmission(json: string): AdmissionState {
  const items = (JSON.parse(json) as { nftables?: NftItem[] }).nftables ?? [];
  const chains = new Set(items.flatMap((i) => (i.chain ? [i.chain.name] : [])));
  const hooked = items.some((i) => i.chain?.name === 'input' && i.chain.hook === 'input');
  const accepted = (chain: string) =>
    items.flatMap((i) => {
      if (i.rule?.chain !== chain || !i.rule.expr.some((e) => 'accept' in e)) return [];
      const saddr = i.rule.expr.find((e) => e.match?.left?.payload?.field === 'saddr')?.match?.right;
      return typeof saddr === 'string' ? [saddr] : [];
    });
  const vnis = new Map<number, string[]>();
  for (const [key, verdict] of items.find((i) => i.map?.name === MAP)?.map?.elem ?? []) {
    const target = verdict.jump?.target;
    if (typeof key === 'number' && target === chainOf(key) && chains.has(target)) vnis.set(key, accepted(target));
  }
  return { hooked, vnis };
}
