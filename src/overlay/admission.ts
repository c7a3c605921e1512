// Underlay admission: a VNI's VXLAN is taken only from the peers configured for that VNI, and,
// with IPsec on, only when it arrived through that peer's inbound SA; and the mirror image on
// the way out: a VNI's VXLAN leaves only to its peers, and with IPsec on only through the SA to
// that peer, so an SA or policy that vanished (mlx5 and xfrm flush a netdev's offloaded SAs and
// policies when it goes down: net/xfrm/xfrm_device.c xfrm_dev_down) drops the traffic instead of
// sending it in clear.
//
// The kernel does not do this itself: the VXLAN socket's encap_rcv runs before the UDP receive
// path's xfrm policy check (net/ipv4/udp.c udp_queue_rcv_one_skb), so an IPsec in-policy does
// not stop plaintext VXLAN, and a VXLAN device takes any source address for its VNI. So:
// nftables, in the netns of the VXLAN socket, two chains per VNI (in, out), reached through maps
// keyed by the VNI in the VXLAN header.
//
// - VNIs vfwire does not own miss the maps and pass: other VXLAN users on the host are untouched.
// - An SA is told by its reqid (stable across key epochs, sa-ids.ts), not by its addresses: nft
//   reads those only from tunnel or BEET mode states (net/netfilter/nft_xfrm.c
//   xfrm_state_addr_ok), and vfwire's SAs are transport mode. A packet without a secpath (in) or
//   an xfrm bundle on its route (out) never matches `ipsec in|out` (nft_xfrm_get_eval_in/_out:
//   NFT_BREAK).
// - Hardware decryption keeps this working: mlx5 puts the SA into the skb's secpath
//   (drivers/net/ethernet/mellanox/mlx5/core/en_accel/ipsec_rxtx.c
//   mlx5e_ipsec_offload_handle_rx_skb); packet offload still routes through the xfrm bundle.
// - What the eswitch encapsulates itself (tc-flower with skip_sw) never passes nftables: there
//   the decap rules match each peer's enc_src_ip, and the IPsec order is ipsec/tc-order.ts's.
// - Every script is one nft transaction, so a chain is never seen half written, and `add` of
//   what exists is a no-op: the same script creates a VNI's chains or rewrites them. One line,
//   commands separated by `;`, so a plan shows it as it runs.

import { ifPresent } from '../exec/if-present.js';
import { nft } from '../exec/tools.js';
import type { Runner } from '../exec/runner.js';
import type { Command, Step } from '../exec/step.js';
import { VXLAN_PORT } from './names.js';

export const ADMISSION_TABLE = 'vfwire';
const FAMILY = 'inet';
const MAP_IN = 'vxlan_vnis';
const MAP_OUT = 'vxlan_vnis_out';
/** The VNI: after UDP's 8 bytes and the VXLAN flags and reserved bytes (RFC 7348 section 5). */
const VNI_FIELD = '@th,96,24';

export interface AdmissionPeer {
  address: string;
  /** With IPsec: the reqids of the SAs from and to this peer; its VXLAN must go through them. */
  reqids?: { in: number; out: number };
}

const chainOf = (vni: number) => `vni_${vni}`;
const outChainOf = (vni: number) => `vni_${vni}_out`;
const t = `${FAMILY} ${ADMISSION_TABLE}`;

/** The table, its maps and the input and output hooks that dispatch on the VNI. */
function base(): string[] {
  const hook = (name: string, map: string, dport: string) => [
    `add map ${t} ${map} { typeof ${VNI_FIELD} : verdict ; }`,
    `add chain ${t} ${name} { type filter hook ${name} priority filter - 10 ; policy accept ; }`,
    `flush chain ${t} ${name}`,
    `add rule ${t} ${name} udp ${dport} ${VXLAN_PORT} ${VNI_FIELD} vmap @${map}`,
  ];
  return [`add table ${t}`, ...hook('input', MAP_IN, 'dport'), ...hook('output', MAP_OUT, 'dport')];
}

/** The nft script that makes the VNI's chains pass exactly these peers, each way, and drop the rest. */
export function admissionScript(vni: number, peers: AdmissionPeer[]): string {
  const [cin, cout] = [chainOf(vni), outChainOf(vni)];
  const accept = (c: string, dir: 'saddr' | 'daddr', p: AdmissionPeer) =>
    `add rule ${t} ${c} ip ${dir} ${p.address}${p.reqids ? ` ipsec ${dir === 'saddr' ? 'in' : 'out'} reqid ${dir === 'saddr' ? p.reqids.in : p.reqids.out}` : ''} accept`;
  const chain = (c: string, map: string, dir: 'saddr' | 'daddr') => [
    `add chain ${t} ${c}`,
    `flush chain ${t} ${c}`,
    ...peers.map((p) => accept(c, dir, p)),
    `add rule ${t} ${c} counter drop`,
    `add element ${t} ${map} { ${vni} : jump ${c} }`,
  ];
  return [...base(), ...chain(cin, MAP_IN, 'saddr'), ...chain(cout, MAP_OUT, 'daddr')].join('; ') + '\n';
}

/** Removes the VNI's chains; adds first what it deletes, so it also succeeds when half is gone. */
export function admissionRemoveScript(vni: number): string {
  const remove = (c: string, map: string) => [
    `add chain ${t} ${c}`,
    `add element ${t} ${map} { ${vni} : jump ${c} }`,
    `delete element ${t} ${map} { ${vni} }`,
    `delete chain ${t} ${c}`,
  ];
  return [...base(), ...remove(chainOf(vni), MAP_IN), ...remove(outChainOf(vni), MAP_OUT)].join('; ') + '\n';
}

/**
 * The VNI's admission, before its VXLAN device exists (a first member) or before its peers
 * change (a live VNI under a new config, so a removed peer is refused before it loses its FDB
 * entry). Undone with the VNI.
 */
export function renderAdmission(
  netns: string | undefined,
  vni: number,
  peers: AdmissionPeer[],
  opts: { withUndo: boolean },
): Step {
  return {
    kind: 'admission',
    device: `${t} ${chainOf(vni)}`,
    owner: { kind: 'vni', vni },
    do: { argv: nft(netns, '-f', '-'), stdin: admissionScript(vni, peers), inputShown: true },
    ...(opts.withUndo ? { undo: admissionRemoval(netns, vni) } : {}),
  };
}

/** What `nft -j list table inet vfwire` shows: the hooks, and per VNI in both maps the peers its in-chain accepts. */
export interface AdmissionState {
  hooked: boolean;
  vnis: Map<number, string[]>;
}

type NftItem = {
  map?: { name: string; elem?: [unknown, { jump?: { target: string } }][] };
  chain?: { name: string; hook?: string };
  rule?: {
    chain: string;
    expr: { match?: { left?: { payload?: { field?: string } }; right?: unknown }; accept?: null }[];
  };
};

export function parseAdmission(json: string): AdmissionState {
  const items = (JSON.parse(json) as { nftables?: NftItem[] }).nftables ?? [];
  const chains = new Set(items.flatMap((i) => (i.chain ? [i.chain.name] : [])));
  const hooked = ['input', 'output'].every((h) => items.some((i) => i.chain?.name === h && i.chain.hook === h));
  const accepted = (chain: string) =>
    items.flatMap((i) => {
      if (i.rule?.chain !== chain || !i.rule.expr.some((e) => 'accept' in e)) return [];
      const saddr = i.rule.expr.find((e) => e.match?.left?.payload?.field === 'saddr')?.match?.right;
      return typeof saddr === 'string' ? [saddr] : [];
    });
  const mapped = (map: string, chainName: (v: number) => string) =>
    new Set(
      (items.find((i) => i.map?.name === map)?.map?.elem ?? []).flatMap(([key, verdict]) =>
        typeof key === 'number' && verdict.jump?.target === chainName(key) && chains.has(chainName(key)) ? [key] : [],
      ),
    );
  const outs = mapped(MAP_OUT, outChainOf);
  const vnis = new Map<number, string[]>();
  for (const vni of mapped(MAP_IN, chainOf)) if (outs.has(vni)) vnis.set(vni, accepted(chainOf(vni)));
  return { hooked, vnis };
}

/** The command that removes a VNI's chains (a VNI's undo, or gc's for chains no VNI accounts for). */
export function admissionRemoval(netns: string | undefined, vni: number): Command {
  return { argv: nft(netns, '-f', '-'), stdin: admissionRemoveScript(vni), inputShown: true };
}

/**
 * The admission table as nft shows it in `netns`; no table is an empty one (nft's own "No such
 * file or directory"). Any other failure (no nft at all, say) throws.
 */
export async function readAdmission(runner: Runner, netns: string | undefined): Promise<AdmissionState> {
  const shown = await ifPresent(runner.run({ argv: nft(netns, '-j', 'list', 'table', FAMILY, ADMISSION_TABLE) }));
  return shown ? parseAdmission(shown.stdout) : { hooked: false, vnis: new Map() };
}
