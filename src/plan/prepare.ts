// The prepare plan: (request, inventory, ledger, config) -> the leases to record and the ordered
// steps that program them. Pure: reads nothing, runs nothing, so `vfwire plan` prints exactly
// what the hook would do, and tests check it against golden files.

import { type Config, type PeerConfig, underlayNetns } from '../config/config.js';
import { renderPeerCheck } from '../ipsec/render-static.js';
import type { DomainRequest, InterfaceSpec } from '../domain/interface-spec.js';
import { ValidationError } from '../errors.js';
import type { Inventory, VfInfo } from '../host/inventory.js';
import type { RecordablePlan } from '../ledger/record.js';
import { leaseKey, type Lease, type LedgerData } from '../ledger/types.js';
import type { AdmissionPeer } from '../overlay/admission.js';
import { overlayFor, type Overlay, type VniView } from '../overlay/overlay.js';
import { inboundReqid, outboundReqid } from '../ipsec/sa-ids.js';
import { defaultGuestMtu, maxGuestMtu } from '../overlay/mtu.js';
import { chooseVf } from './choose-vf.js';
import { peersOf } from './peers.js';
import type { Step } from '../exec/step.js';
import { renderVfConfig } from './vf-config.js';

/** A start's plan: what the ledger records (RecordablePlan) for one VM. */
export interface PreparePlan extends RecordablePlan {
  vm: string;
  uuid: string;
}

export function planPrepare(
  req: DomainRequest,
  inv: Inventory,
  ledger: LedgerData,
  cfg: Config,
  now = new Date(),
): PreparePlan {
  const ifaces = req.interfaces ?? [];
  const overlay = overlayFor(cfg);
  const overlayMtu = maxGuestMtu(cfg.underlay.mtu, cfg.ipsec.mode !== 'off');
  const plan: PreparePlan = { vm: req.name, uuid: req.uuid, leases: [], newVnis: [], peerUpdates: [], steps: [] };
  const taken = new Set<string>();
  const checkedPeers = new Set<string>();

  for (const spec of ifaces) {
    const peers = peersOf(cfg, spec.vni);
    const key = leaseKey(req.uuid, spec.index);
    // The SA checks run first: nothing is touched for a VM that would not be encrypted.
    plan.steps.unshift(...encryptionChecks(req.name, spec, cfg, overlay, peers, ledger, key, checkedPeers));
    const mtu = guestMtu(req.name, spec, cfg, overlayMtu);
    checkMacFree(req.name, spec, ledger);
    checkMtuMatches(req.name, spec, mtu, ledger, plan.leases);
    const { pf, vf } = chooseVf(req.name, spec.index, spec.pf, inv, ledger, cfg, taken);
    taken.add(`${pf.name}/${vf.index}`);

    const vfSteps = renderVfConfig(cfg.backend, cfg.netns, {
      leaseKey: key,
      pf: pf.name,
      vf: vf.index,
      vfDev: vf.netdev,
      mac: spec.mac,
      mtu,
      origMac: cfg.backend === 'real' ? vf.adminMac : vf.mac,
    });
    const joined = overlay.join(
      vniView(ledger, plan, spec.vni, peers, cfg),
      { leaseKey: key, rep: vf.rep!, mac: spec.mac, pci: vf.pci, mtu },
      vfSteps,
      plan.leases.length === 0,
    );
    plan.steps.push(...joined.steps);
    if (joined.newVni) plan.newVnis.push({ vni: spec.vni, ...joined.newVni });
    if (joined.peerUpdate) plan.peerUpdates.push({ vni: spec.vni, ...joined.peerUpdate });
    plan.leases.push(newLease(req, spec, key, pf.name, vf, mtu, cfg, now));
  }
  return plan;
}

/**
 * Who a VNI's VXLAN may come from and go to: its configured peers, each only through the SAs of
 * the pair when IPsec is on (a reqid names the SA of every key epoch, and strongSwan's CHILD_SAs too).
 */
function admissionPeers(cfg: Config, peers: PeerConfig[]): AdmissionPeer[] {
  const ipsec = cfg.ipsec.mode !== 'off';
  const local = cfg.underlay.address;
  return peers.map((p) => ({
    address: p.address,
    ...(ipsec ? { reqids: { in: inboundReqid(local, p.address), out: outboundReqid(local, p.address) } } : {}),
  }));
}

// Two guests with one MAC on one L2 segment break each other (a clone that kept an explicit MAC).
function checkMacFree(vm: string, spec: InterfaceSpec, ledger: LedgerData): void {
  const holder = Object.values(ledger.leases).find((l) => l.mac === spec.mac && l.vni === spec.vni);
  if (holder)
    throw new ValidationError(
      `interface ${spec.index}: mac: ${spec.mac} is already used on VNI ${spec.vni} by vm ${holder.vm}`,
      { vm },
    );
}

function newLease(
  req: DomainRequest,
  spec: InterfaceSpec,
  key: string,
  pf: string,
  vf: VfInfo,
  mtu: number,
  cfg: Config,
  now: Date,
): Lease {
  return {
    key,
    vm: req.name,
    uuid: req.uuid,
    index: spec.index,
    pf,
    vf: vf.index,
    pci: vf.pci,
    vfDev: vf.netdev,
    rep: vf.rep!,
    vni: spec.vni,
    mac: spec.mac,
    mtu,
    since: now.toISOString(),
    state: 'preparing',
    attach: cfg.backend === 'real' ? 'hostdev' : vf.netdev ? 'netns' : 'ethernet',
    undo: [],
  };
}

/** The VNI as the overlay's join sees it: the ledger's state and this plan's earlier interfaces. */
function vniView(ledger: LedgerData, plan: PreparePlan, vni: number, peers: PeerConfig[], cfg: Config): VniView {
  const live = ledger.vnis[String(vni)];
  const fromLedger = (live?.members ?? []).flatMap((k) => (ledger.leases[k] ? [ledger.leases[k]] : []));
  const members = [...fromLedger, ...plan.leases.filter((l) => l.vni === vni)].map((l) => ({
    leaseKey: l.key,
    rep: l.rep,
    mac: l.mac,
    pci: l.pci,
    mtu: l.mtu,
  }));
  return {
    vni,
    ...(live ? { live: { peers: live.peers } } : {}),
    plannedHere: plan.newVnis.some((v) => v.vni === vni) || plan.peerUpdates.some((v) => v.vni === vni),
    peers: peers.map((p) => p.address),
    admission: admissionPeers(cfg, peers),
    members,
  };
}

// One L2 segment, one MTU: a 9000-byte guest beside a 1500-byte one loses every large frame
// between them without a word (no router is there to send "fragmentation needed").
function checkMtuMatches(vm: string, spec: InterfaceSpec, mtu: number, ledger: LedgerData, planned: Lease[]): void {
  const other = [...Object.values(ledger.leases), ...planned].find((l) => l.vni === spec.vni && l.mtu !== mtu);
  if (other)
    throw new ValidationError(
      `interface ${spec.index}: mtu: ${mtu} differs from the ${other.mtu} of vm ${other.vm} on VNI ${spec.vni} (one L2 segment needs one MTU)`,
      { vm },
    );
}

function guestMtu(vm: string, spec: InterfaceSpec, cfg: Config, overlayMtu: number): number {
  if (spec.mtu === undefined) return defaultGuestMtu(cfg.vfMtu, cfg.underlay.mtu, cfg.ipsec.mode !== 'off');
  if (spec.mtu > overlayMtu) {
    const why = `underlay ${cfg.underlay.mtu} - VXLAN${cfg.ipsec.mode !== 'off' ? ' - ESP' : ''} overhead`;
    throw new ValidationError(
      `interface ${spec.index}: mtu: ${spec.mtu} does not fit the overlay (at most ${overlayMtu}: ${why})`,
      { vm },
    );
  }
  return spec.mtu;
}

// Fail closed: traffic that leaves this host for a peer must be encrypted when the VM asks for
// it. A VNI with no peers never leaves the host, so it needs no IPsec. With static IPsec the
// peers' SAs must be up (ledger) and still in the kernel (which drops offloaded SAs when their
// netdev goes down): one `ip xfrm state get` per SA, once per plan.
//
// On a tc-flower host with IPsec every start needs its VNI's SAs, encrypt="off" too: tc rules
// may exist only while the SAs do (ipsec/tc-order.ts), and none while they are taken down.
function encryptionChecks(
  vm: string,
  spec: InterfaceSpec,
  cfg: Config,
  overlay: Overlay,
  peers: PeerConfig[],
  ledger: LedgerData,
  leaseKey: string,
  checked: Set<string>,
): Step[] {
  const tcIpsec = overlay.sasForEveryStart;
  if (tcIpsec && ledger.ipsec?.tcRulesDown) {
    throw new ValidationError(
      `interface ${spec.index}: the tc-flower rules are down until IPsec is back (mlx5 takes no first SA beside tc rules): run vfwire ipsec up, or let vfwire ipsec watch recover`,
      { vm },
    );
  }
  if ((spec.encrypt !== 'required' && !tcIpsec) || peers.length === 0) return [];
  const names = peers.map((p) => p.name).join(', ');
  if (cfg.ipsec.mode === 'off') {
    throw new ValidationError(
      `interface ${spec.index}: encrypt: required, but VNI ${spec.vni} reaches peer(s) ${names} and ipsec.mode is off in ${cfg.path} ` +
        `(enable IPsec, or set encrypt="off" to accept an unencrypted overlay)`,
      { vm },
    );
  }
  const down = peers.filter((p) => !ledger.ipsec?.peers[p.name]);
  if (down.length) {
    const why =
      spec.encrypt === 'required' ? 'encrypt: required' : 'overlay tc-flower with IPsec (tc rules only after the SAs)';
    throw new ValidationError(
      `interface ${spec.index}: ${why}, but no IPsec SAs to ${down.map((p) => p.name).join(', ')} are up (run: vfwire ipsec up)`,
      { vm },
    );
  }
  const unchecked = peers.filter((p) => !checked.has(p.name));
  for (const p of unchecked) checked.add(p.name);
  return unchecked.flatMap((p) =>
    renderPeerCheck(p.name, underlayNetns(cfg), ledger.ipsec!.peers[p.name]!.sas, leaseKey),
  );
}
