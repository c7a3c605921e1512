// Anti-spoofing on the bridge overlay: a VM's frames enter its VNI's bridge only with the lease's
// MAC as source, and its ARP only with that MAC as sender. In switchdev mlx5 enforces no VF
// spoof check (drivers/net/ethernet/mellanox/mlx5/core/esw/legacy.c
// mlx5_eswitch_set_vport_spoofchk: legacy mode only), so it is the representor's, where the VF's
// traffic reaches the kernel: nftables in the bridge family, prerouting, keyed by representor.
// (tc-flower's representor rules match src_mac themselves.) Not covered: the link-layer address
// options inside IPv6 neighbour discovery.
//
// One table for every lease: `reps` are the guarded ports, `allowed` the (port, MAC) pairs; a
// lease adds its two elements before its representor joins the bridge and removes them after it
// left. Scripts are single nft transactions; `add` of what exists is a no-op.

import type { Runner } from '../exec/runner.js';
import { ifPresent } from '../exec/if-present.js';
import { nft } from '../exec/tools.js';
import type { Step } from '../exec/step.js';

const t = 'bridge vfwire';

function base(): string[] {
  return [
    `add table ${t}`,
    `add set ${t} reps { type ifname ; }`,
    `add set ${t} allowed { type ifname . ether_addr ; }`,
    `add chain ${t} prerouting { type filter hook prerouting priority filter ; policy accept ; }`,
    `flush chain ${t} prerouting`,
    `add rule ${t} prerouting iifname @reps iifname . ether saddr != @allowed counter drop`,
    `add rule ${t} prerouting iifname @reps arp operation { request, reply } iifname . arp saddr ether != @allowed counter drop`,
  ];
}

export function repGuardScript(rep: string, mac: string): string {
  return (
    [...base(), `add element ${t} reps { "${rep}" }`, `add element ${t} allowed { "${rep}" . ${mac} }`].join('; ') +
    '\n'
  );
}

/** Removes the lease's elements; adds them first, so it also succeeds when they are gone. */
export function repUnguardScript(rep: string, mac: string): string {
  const els = [`reps { "${rep}" }`, `allowed { "${rep}" . ${mac} }`];
  return (
    [...base(), ...els.map((e) => `add element ${t} ${e}`), ...els.map((e) => `delete element ${t} ${e}`)].join('; ') +
    '\n'
  );
}

/** Before the representor joins its bridge; undone after it left. */
export function renderRepGuard(netns: string | undefined, leaseKey: string, rep: string, mac: string): Step {
  return {
    kind: 'rep-guard',
    device: rep,
    owner: { kind: 'lease', key: leaseKey },
    do: { argv: nft(netns, '-f', '-'), stdin: repGuardScript(rep, mac), inputShown: true },
    undo: { argv: nft(netns, '-f', '-'), stdin: repUnguardScript(rep, mac), inputShown: true },
  };
}

/** The guard's table once no lease uses it (the sim's libvirt host keeps it in the root netns). */
export async function dropIdleGuardTable(runner: Runner, netns: string | undefined): Promise<void> {
  const shown = await ifPresent(runner.run({ argv: nft(netns, '-j', 'list', 'table', ...t.split(' ')) }));
  if (!shown) return;
  const sets = (JSON.parse(shown.stdout) as { nftables?: { set?: { elem?: unknown[] } }[] }).nftables ?? [];
  if (sets.some((i) => (i.set?.elem?.length ?? 0) > 0)) return;
  await runner.run({ argv: nft(netns, 'delete', 'table', ...t.split(' ')) });
}
