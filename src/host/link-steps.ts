// The host-owned link steps host setup is made of (addresses, link flags, MTU), each with the
// undo that restores what was read. A field not read counts as the kernel's boot default.

import { ip } from '../exec/tools.js';
import type { Step, StepOwner } from '../exec/step.js';

/** Host state: `host setup` makes and keeps it, the ledger records no undo of it. */
export const HOST_OWNER: StepOwner = { kind: 'host' };

/** A netdev as the kernel creates it. */
export const DEFAULT_LINK = { mtu: 1500, up: false };

export interface LinkState {
  mtu?: number;
  up?: boolean;
}

export function addrStep(ns: string | undefined, dev: string, cidr: string, verb: 'add' | 'del' = 'add'): Step {
  const cmd = (v: string) => ({ argv: ip(ns, 'addr', v, cidr, 'dev', dev) });
  return {
    kind: 'uplink-addr',
    device: dev,
    owner: HOST_OWNER,
    do: cmd(verb),
    undo: cmd(verb === 'add' ? 'del' : 'add'),
  };
}

/** `ip link set dev DEV ARGS`; undone by UNDOARGS when the state before is known. */
export function linkStep(
  ns: string | undefined,
  kind: string,
  dev: string,
  args: string[],
  undoArgs: string[] | undefined,
): Step {
  return {
    kind,
    device: dev,
    owner: HOST_OWNER,
    do: { argv: ip(ns, 'link', 'set', 'dev', dev, ...args) },
    ...(undoArgs ? { undo: { argv: ip(ns, 'link', 'set', 'dev', dev, ...undoArgs) } } : {}),
  };
}

/** `mtu M up` when either differs (or `force`); the undo puts back the MTU and state read before. */
export function mtuUpStep(ns: string | undefined, dev: string, mtu: number, before: LinkState, force = false): Step[] {
  if (!force && before.mtu === mtu && before.up === true) return [];
  const prev = { ...DEFAULT_LINK, ...before };
  return [
    linkStep(ns, 'uplink-link', dev, ['mtu', String(mtu), 'up'], ['mtu', String(prev.mtu), prev.up ? 'up' : 'down']),
  ];
}
