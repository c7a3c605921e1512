// What `vfwire gc` finds on vfwire's OVS bridge that no lease accounts for: ports other than the
// tunnel port whose representor no lease of this bridge holds, and rules under the cookie of a VNI
// the ledger does not record on this bridge (a ledger lost or edited, an overlay switched with
// leases alive). What the ledger records is its release's to undo, stale lease or not: prepare
// records its plan before running it (ledger/record.ts). The bridge and its tunnel port are host
// setup's and stay.

import { VfwireError } from '../../errors.js';
import type { Runner } from '../../exec/runner.js';
import type { LedgerData } from '../../ledger/types.js';
import type { Leftover } from '../overlay.js';
import { OVS_TUNNEL_PORT, ofctl, vsctl, type OvsHost } from './model.js';

export interface OvsFound {
  /** The bridge's ports (ovs-vsctl list-ports), the tunnel port included. */
  ports: string[];
  /** The distinct non-zero cookies of the bridge's rules. */
  cookies: number[];
}

/** The cookies of `ovs-ofctl dump-flows` lines (it prints `cookie=0x..` first, in hex, ovs-ofctl(8)). */
export function parseCookies(dump: string): number[] {
  const out = new Set<number>();
  for (const m of dump.matchAll(/^\s*cookie=0x([0-9a-f]+),/gm)) {
    const c = Number.parseInt(m[1]!, 16);
    if (c !== 0) out.add(c);
  }
  return [...out].sort((a, b) => a - b);
}

/** The bridge's ports and rule cookies; undefined when there is no such bridge (host setup never ran). */
export async function readOvsFound(host: OvsHost, runner: Runner): Promise<OvsFound | undefined> {
  const { stdout } = await runner.run({
    argv: vsctl(host, '--format=json', '--data=json', '--', '--columns=name', 'find', 'Bridge', `name=${host.bridge}`),
  });
  if (!(JSON.parse(stdout) as { data: unknown[] }).data.length) return undefined;
  const ports = (await runner.run({ argv: vsctl(host, 'list-ports', host.bridge) })).stdout.split('\n');
  const dump = (await runner.run({ argv: ofctl(host, [], 'dump-flows') })).stdout;
  return { ports: ports.map((p) => p.trim()).filter(Boolean), cookies: parseCookies(dump) };
}

/** What of `found` the ledger does not account for, with the command that removes each. */
export function planOvsLeftovers(host: OvsHost, found: OvsFound, ledger: LedgerData): Leftover[] {
  const here = (vni: number) => {
    const ovs = ledger.vnis[String(vni)]?.ovs;
    return ovs?.bridge === host.bridge && ovs.runDir === host.runDir;
  };
  const reps = new Set(
    Object.values(ledger.leases)
      .filter((l) => here(l.vni))
      .map((l) => l.rep),
  );
  const out: Leftover[] = [];
  for (const port of found.ports) {
    if (port === OVS_TUNNEL_PORT || reps.has(port)) continue;
    out.push({
      line: `${port}: port of ${host.bridge} without a lease`,
      command: { argv: vsctl(host, '--if-exists', 'del-port', host.bridge, port) },
    });
  }
  for (const cookie of found.cookies) {
    if (here(cookie)) continue;
    const c = `0x${cookie.toString(16)}`;
    out.push({
      line: `rules of ${host.bridge} under cookie ${c} (VNI ${cookie}): not in the ledger`,
      command: { argv: ofctl(host, [], 'del-flows', `cookie=${c}/-1`) },
    });
  }
  return out;
}

/** gc's read of the bridge: a bridge that cannot be read frees nothing (no failure read as "nothing there"). */
export async function ovsLeftovers(host: OvsHost, runner: Runner, ledger: LedgerData): Promise<Leftover[]> {
  let found: OvsFound | undefined;
  try {
    found = await readOvsFound(host, runner);
  } catch (err) {
    throw new VfwireError(
      `cannot read vfwire's OVS bridge ${host.bridge} (run dir ${host.runDir}), so gc frees nothing: start Open vSwitch (systemctl start openvswitch-switch, or vfwire host setup) and run gc again`,
      { cause: err },
    );
  }
  return found ? planOvsLeftovers(host, found, ledger) : [];
}
