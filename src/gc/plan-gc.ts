// What `vfwire gc` frees, decided from plain data: the ledger, the VMs libvirt says are running
// and the links the host has. Pure, so `gc --dry-run` prints exactly what `gc` would run.

import { deviceAlias } from '../domain/device-aliases.js';
import { needsLiveAttach, type LedgerData, type Lease } from '../ledger/types.js';
import { planReleaseKeys } from '../plan/release.js';
import type { Command } from '../exec/step.js';
import { ip } from '../exec/tools.js';
import { admissionRemoval } from '../overlay/admission.js';
import type { Leftover } from '../overlay/overlay.js';

export interface HostLink {
  name: string;
  master?: string;
  /** The netns it lives in (undefined: the host's own). */
  netns?: string;
}

export interface GcInput {
  ledger: LedgerData;
  /** UUIDs of the domains libvirt runs (a start in progress counts as running). */
  running: Set<string>;
  links: HostLink[];
  /** Leases younger than this are left alone: their VM may be between prepare and running. */
  notBefore: Date;
  /**
   * Device aliases in the live XML of running domains, by UUID. A lease whose device was attached
   * (attachedAt) but whose alias is gone from its running domain was detached (virsh
   * detach-device): no hook runs for that, so gc frees it. A running domain not in the map was
   * not asked, and its leases are kept.
   */
  liveAliases?: Map<string, Set<string>>;
  /** The VNIs with admission chains now, and the netns of their table (overlay/admission.ts). */
  admission?: { netns?: string; vnis: number[] };
  /** What the overlay holds that the ledger does not account for (Overlay.leftovers: OVS ports and rules). */
  overlayLeftovers?: Leftover[];
}

export interface GcPlan {
  /** Leases whose VM is gone, with why. */
  staleLeases: { key: string; vm: string; why: string }[];
  /** Release commands of those leases, then removal of unrecorded leftovers. */
  commands: Command[];
  /** Human-readable, one line per leftover found outside the ledger. */
  leftovers: string[];
}

// Bridges and VXLAN devices vfwire creates (overlay/names.ts); nothing else is ever deleted.
const OURS = /^vfw(br|vx)(\d{1,8})$/;

/** Sim netns guests are not libvirt domains: their leases are the sim's to release. */
export function planGc({
  ledger,
  running,
  links,
  notBefore,
  liveAliases,
  admission,
  overlayLeftovers,
}: GcInput): GcPlan {
  // No grace for a detached device: attachedAt says its VM was running with it.
  const detached = (l: Lease) =>
    running.has(l.uuid) && !!l.attachedAt && liveAliases?.get(l.uuid)?.has(deviceAlias(l)) === false;
  const stale = Object.values(ledger.leases).filter(
    (l) => needsLiveAttach(l) && ((!running.has(l.uuid) && new Date(l.since) < notBefore) || detached(l)),
  );
  const release = planReleaseKeys(
    ledger,
    stale.map((l) => l.key),
  );
  const going = new Set(stale.map((l) => l.key));

  // What the ledger still holds after the stale leases go.
  const keptVnis = new Set(
    Object.values(ledger.vnis)
      .filter((v) => v.members.some((m) => !going.has(m)))
      .map((v) => v.vni),
  );
  const keptReps = new Set(
    Object.values(ledger.leases)
      .filter((l) => !going.has(l.key))
      .map((l) => l.rep),
  );
  const releasedDevices = new Set(release.commands.flatMap((c) => c.argv));

  const leftovers: string[] = [];
  const commands = [...release.commands];
  for (const link of links) {
    const m = OURS.exec(link.name);
    if (m && !keptVnis.has(Number(m[2])) && !releasedDevices.has(link.name)) {
      leftovers.push(`${link.name}${link.netns ? ` (netns ${link.netns})` : ''}: not in the ledger`);
      commands.push({ argv: ip(link.netns, 'link', 'del', link.name) });
    } else if (
      !m &&
      link.master &&
      OURS.test(link.master) &&
      !keptReps.has(link.name) &&
      !releasedDevices.has(link.name)
    ) {
      leftovers.push(`${link.name}: port of ${link.master} without a lease`);
      commands.push({ argv: ip(link.netns, 'link', 'set', 'dev', link.name, 'nomaster', 'down') });
    }
  }
  // Chains of a VNI the ledger has never heard of (a prepare killed after its admission step and
  // before it recorded anything, a ledger lost): a released VNI's undo removes its own.
  for (const vni of admission?.vnis ?? []) {
    if (ledger.vnis[String(vni)]) continue;
    leftovers.push(`admission chains of VNI ${vni}: not in the ledger`);
    commands.push(admissionRemoval(admission!.netns, vni));
  }
  for (const l of overlayLeftovers ?? []) {
    leftovers.push(l.line);
    commands.push(l.command);
  }
  const why = (l: Lease) =>
    detached(l) ? `its device ${deviceAlias(l)} was detached from the running domain` : 'its domain is not running';
  return { staleLeases: stale.map((l) => ({ key: l.key, vm: l.vm, why: why(l) })), commands, leftovers };
}
