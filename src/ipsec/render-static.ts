// The lab notes' static IPsec between two hosts, made safe: per peer two ESP transport SAs with
// AES-GCM-128 and ESN, offloaded to the uplink as the config's offload mode says, and two
// policies that require them for the VXLAN traffic (UDP 4789) between the underlay addresses.
// The peer renders the mirror image: same SPIs and keys, directions swapped.
//
// Departures from the notes, each forced by the kernel or by safety:
// - the form follows the host's kernel and iproute2 (xfrm-form.ts): where both know the SA
//   direction, output SAs say `dir out` and have replay-window 0;
// - states are added through `ip -batch -` so the key is on stdin, not in an argv that every
//   local user can read in /proc;
// - the policies carry `proto udp dport 4789`, so the SAs cover the overlay and nothing else; the
//   states' selectors do not: mlx5 steers received ESP by the state's selector, and an upper
//   protocol there makes its RX rule match UDP instead of ESP
//   (drivers/net/ethernet/mellanox/mlx5/core/en_accel/ipsec_fs.c setup_fte_upper_proto_match).

import { ip } from '../exec/tools.js';
import type { Step } from '../exec/step.js';
import type { PeerKeys } from './keys.js';
import { INBOUND_REPLAY_WINDOW, type XfrmForm } from './xfrm-form.js';
import { policyDeleteArgv, policySelector, saDeleteArgv, saGetArgv, saIdArgs } from './sa-kernel.js';
import { deriveSaIds, hex32, orderPair, type Direction } from './sa-ids.js';

const AEAD = 'rfc4106(gcm(aes))';
const ICV_BITS = '128';

/** Where one peer's SAs live: what every SA and policy command of the pair needs. */
export interface PeerSaContext {
  peerName: string;
  /** The netdev whose NIC does the ESP work (the PF, or the bond with failover). */
  uplink: string;
  netns?: string;
  priority: number;
  form: XfrmForm;
}

export interface StaticPeerInput extends PeerSaContext {
  local: string;
  peer: string;
  keys: PeerKeys;
  /** The next epochs' keys: their inbound SAs are installed ahead, so the peer can move first. */
  lookahead?: PeerKeys[];
}

export interface PeerSa {
  dir: 'out' | 'in';
  src: string;
  dst: string;
  spi: number;
  reqid: number;
  key: Buffer;
}

/** The two SAs of the pair as this host sees them. */
export function peerSas(input: Pick<StaticPeerInput, 'local' | 'peer' | 'keys'>): [PeerSa, PeerSa] {
  const [low] = orderPair(input.local, input.peer);
  const outDir: Direction = input.local === low ? 'low-to-high' : 'high-to-low';
  const inDir: Direction = outDir === 'low-to-high' ? 'high-to-low' : 'low-to-high';
  const { keyId, epoch } = input.keys;
  const keyOf = (d: Direction) => (d === 'low-to-high' ? input.keys.lowToHigh : input.keys.highToLow);
  return [
    {
      dir: 'out',
      src: input.local,
      dst: input.peer,
      ...deriveSaIds(input.local, input.peer, keyId, epoch, outDir),
      key: keyOf(outDir),
    },
    {
      dir: 'in',
      src: input.peer,
      dst: input.local,
      ...deriveSaIds(input.local, input.peer, keyId, epoch, inDir),
      key: keyOf(inDir),
    },
  ];
}

/**
 * `ipsec up` for one peer: the inbound SA, the next epochs' inbound SAs, the two policies, and
 * last the outbound SA (a failure before it leaves its key unused).
 */
export function renderPeerSas(input: StaticPeerInput): Step[] {
  const [out, inb] = peerSas(input);
  const ahead = (input.lookahead ?? []).map((keys) => peerSas({ ...input, keys })[1]);
  return [
    ...[inb, ...ahead].map((sa) => stateAddStep(input, sa)),
    ...[out, inb].map((sa) => policyAddStep(input, sa)),
    stateAddStep(input, out),
  ];
}

export function stateAddStep(ctx: PeerSaContext, sa: PeerSa): Step {
  const { form } = ctx;
  const state = [
    'xfrm',
    'state',
    'add',
    ...saIdArgs(sa),
    'reqid',
    hex32(sa.reqid),
    'mode',
    'transport',
    'aead',
    AEAD,
    `0x${sa.key.toString('hex')}`,
    ICV_BITS,
    ...stateOffload(form, ctx.uplink, sa.dir),
    'sel',
    'src',
    sa.src,
    'dst',
    sa.dst,
    'flag',
    'esn',
    'replay-window',
    String(sa.dir === 'out' ? form.outReplayWindow : INBOUND_REPLAY_WINDOW),
  ];
  return {
    kind: `xfrm-state-${sa.dir}`,
    device: `${sa.src}->${sa.dst} spi ${hex32(sa.spi)}`,
    owner: { kind: 'peer', name: ctx.peerName },
    do: { argv: ip(ctx.netns, '-batch', '-'), stdin: state.join(' ') + '\n' },
    undo: { argv: saDeleteArgv(ctx.netns, sa) },
  };
}

/**
 * The policy that requires ESP for one direction; it names the reqid, which no epoch changes.
 * `update` adds it or replaces one left behind (a crash, an earlier boot's ledger).
 */
export function policyAddStep(ctx: PeerSaContext, sa: Omit<PeerSa, 'key' | 'spi'>): Step {
  return {
    kind: `xfrm-policy-${sa.dir}`,
    device: `${sa.src}->${sa.dst}`,
    owner: { kind: 'peer', name: ctx.peerName },
    do: {
      argv: ip(
        ctx.netns,
        'xfrm',
        'policy',
        'update',
        ...policySelector(sa),
        ...policyOffload(ctx.form, ctx.uplink),
        'dir',
        sa.dir,
        'tmpl',
        'src',
        sa.src,
        'dst',
        sa.dst,
        'proto',
        'esp',
        'reqid',
        hex32(sa.reqid),
        'mode',
        'transport',
        'priority',
        String(ctx.priority),
      ),
    },
    undo: { argv: policyDeleteArgv(ctx.netns, sa) },
  };
}

/**
 * The state's offload clause; its `dir` is also the SA direction for iproute2 >= 6.11. Crypto
 * offload is written without its keyword, which iproute2 < 6.2 lacks and reads as crypto
 * (ip/xfrm_state.c: "If user doesn't provide offload mode, treat it as crypto one").
 */
function stateOffload(form: XfrmForm, uplink: string, dir: 'in' | 'out'): string[] {
  if (form.offload === 'packet') return ['offload', 'packet', 'dev', uplink, 'dir', dir];
  if (form.offload === 'crypto') return ['offload', 'dev', uplink, 'dir', dir];
  return form.saDir ? ['dir', dir] : [];
}

/** Only packet offload puts the policy in the NIC; crypto offload is a property of the state. */
function policyOffload(form: XfrmForm, uplink: string): string[] {
  return form.offload === 'packet' ? ['offload', 'packet', 'dev', uplink] : [];
}

/** Fail closed at start: the SAs this host installed to a peer are still in the kernel. */
export function renderPeerCheck(
  peerName: string,
  netns: string | undefined,
  sas: { src: string; dst: string; spi: number }[],
  leaseKey: string,
): Step[] {
  return sas.map((sa) => ({
    kind: 'ipsec-check',
    device: `${peerName} ${sa.src}->${sa.dst} spi ${hex32(sa.spi)}`,
    owner: { kind: 'lease', key: leaseKey },
    do: { argv: saGetArgv(netns, sa) },
  }));
}
