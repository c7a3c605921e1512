// `vfwire status [--json]`: the leases and VNIs in the ledger.

import { configPath, loadConfig } from '../config/config.js';
import { readLedger } from '../ledger/store.js';
import { makeTable } from '../table.js';

export async function statusCommand(opts: { json?: boolean; config?: string }): Promise<void> {
  const cfg = await loadConfig(configPath(opts.config));
  const data = await readLedger(cfg.stateDir);
  const leases = Object.values(data.leases).sort((a, b) => a.vm.localeCompare(b.vm) || a.index - b.index);
  const vnis = Object.values(data.vnis).sort((a, b) => a.vni - b.vni);
  if (opts.json) {
    // Undo commands are internal bookkeeping; status shows what is leased.
    console.log(
      JSON.stringify(
        { leases: leases.map(({ undo: _undo, ...l }) => l), vnis: vnis.map(({ undo: _undo, ...v }) => v) },
        null,
        2,
      ),
    );
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
    ]);
  const vt = makeTable(['VNI', 'MEMBERS', 'PEERS']);
  const vmOf = (key: string) => (data.leases[key] ? `${data.leases[key]!.vm}#${data.leases[key]!.index}` : key);
  for (const v of vnis) vt.push([v.vni, v.members.map(vmOf).join(', '), v.peers.join(', ') || '-']);
  console.log(leases.length ? lt.toString() : 'no leases');
  if (vnis.length) console.log(vt.toString());
}
