// `vfwire status [--json]`: the leases and VNIs in the ledger; per lease how long its start took
// to get the VF attached, per VNI whether its traffic to each peer is encrypted right now.

import { configPath, loadConfig, type Config } from '../config/config.js';
import { describeEncryption, peerEncryption, type PeerEncryption } from '../ipsec/encryption-status.js';
import { readLedger } from '../ledger/store.js';
import type { LedgerData, Lease } from '../ledger/types.js';
import { makeTable } from '../table.js';
import { hostRunner } from './host-runner.js';

/** Lease to attached, ms: what a `virsh start` waited for its VF. */
const attachMs = (l: Pick<Lease, 'since' | 'attachedAt'>) =>
  l.attachedAt ? Date.parse(l.attachedAt) - Date.parse(l.since) : undefined;

/** Each VNI's peers (by underlay address) with their encryption now; each peer read once. */
async function vniEncryption(cfg: Config, data: LedgerData): Promise<Map<number, PeerEncryption[]>> {
  const runner = hostRunner(cfg);
  const byAddress = new Map<string, Promise<PeerEncryption>>();
  const read = (address: string): Promise<PeerEncryption> => {
    const peer = cfg.peers.find((p) => p.address === address);
    if (!peer) return Promise.resolve({ peer: '?', address, state: 'unknown', detail: 'not in the config' });
    let r = byAddress.get(address);
    if (!r) byAddress.set(address, (r = peerEncryption(cfg, runner, data.ipsec, peer)));
    return r;
  };
  const out = new Map<number, PeerEncryption[]>();
  for (const v of Object.values(data.vnis)) out.set(v.vni, await Promise.all(v.peers.map(read)));
  return out;
}

export async function statusCommand(opts: { json?: boolean; config?: string }): Promise<void> {
  const cfg = await loadConfig(configPath(opts.config));
  const data = await readLedger(cfg.stateDir);
  const leases = Object.values(data.leases).sort((a, b) => a.vm.localeCompare(b.vm) || a.index - b.index);
  const vnis = Object.values(data.vnis).sort((a, b) => a.vni - b.vni);
  const encryption = await vniEncryption(cfg, data);
  if (opts.json) {
    // Undo commands are internal bookkeeping; status shows what is leased.
    const json = {
      leases: leases.map(({ undo: _undo, ...l }) => ({ ...l, attachMs: attachMs(l) })),
      vnis: vnis.map(({ undo: _undo, ...v }) => ({ ...v, encryption: encryption.get(v.vni) ?? [] })),
    };
    console.log(JSON.stringify(json, null, 2));
    return;
  }
  const lt = makeTable([
    'VM',
    'IF',
    'PF',
    'VF',
    'PCI',
    'REPRESENTOR',
    'VNI',
    'MAC',
    'MTU',
    'STATE',
    'SINCE',
    'ATTACHED',
    'TO ATTACH',
  ]);
  const time = (iso?: string) => (iso ? iso.replace(/\.\d+Z$/, 'Z') : '-');
  for (const l of leases)
    lt.push([
      l.vm,
      l.index,
      l.pf,
      l.vf,
      l.pci,
      l.rep,
      l.vni,
      l.mac,
      l.mtu,
      l.state,
      time(l.since),
      l.attach === 'netns' ? 'netns guest' : time(l.attachedAt),
      attachMs(l) === undefined ? '-' : `${(attachMs(l)! / 1000).toFixed(2)} s`,
    ]);
  const vt = makeTable(['VNI', 'MEMBERS', 'PEERS', 'ENCRYPTION NOW']);
  const vmOf = (key: string) => (data.leases[key] ? `${data.leases[key]!.vm}#${data.leases[key]!.index}` : key);
  for (const v of vnis) {
    const enc = encryption.get(v.vni) ?? [];
    const now = enc.length ? enc.map(describeEncryption).join('; ') : '- (no peers: stays on this host)';
    vt.push([v.vni, v.members.map(vmOf).join(', '), v.peers.join(', ') || '-', now]);
  }
  console.log(leases.length ? lt.toString() : 'no leases');
  if (vnis.length) console.log(vt.toString());
}
