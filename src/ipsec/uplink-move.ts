// failover pf-switch, as the watch does it: the underlay address to the PF with a link when the
// one holding it has none (failover/pf-switch.ts plans it), then the gratuitous ARP that tells
// the peers its new MAC, once the SAs are on the new port (watch.ts says when).

import type { Config } from '../config/config.js';
import { oneLine } from '../errors.js';
import type { Runner } from '../exec/runner.js';
import type { Command } from '../exec/step.js';
import { planUplinkMove, readUplinkPorts } from '../failover/pf-switch.js';
import type { Logger } from '../log.js';
import { UNDERLAY, type WatchFinding } from './watch-finding.js';

/** pf-switch: the underlay to the PF with a link when the one holding it has none, and its announcement. */
export async function moveUplink(
  cfg: Config,
  runner: Runner,
  log: Logger,
): Promise<{ finding: WatchFinding; announce?: Command } | undefined> {
  const move = planUplinkMove(cfg, await readUplinkPorts(cfg, runner));
  if (!move) return undefined;
  const lost = [`link of ${move.from}`];
  try {
    for (const c of move.commands) await runner.run(c);
  } catch (err) {
    const action = `moving the underlay to ${move.to} failed: ${(err as Error).message}`;
    return { finding: { peer: UNDERLAY, lost, action, recovered: false } };
  }
  log.warn('ipsec watch: underlay moved', { from: move.from, to: move.to, address: cfg.underlay.address });
  const action = `moved the underlay ${cfg.underlay.address} to ${move.to}`;
  return { finding: { peer: UNDERLAY, lost, action, recovered: true }, announce: move.announce };
}

/** The move stands without it; the peers then follow at the kernel's own probe, seconds later. */
export async function announceUplink(
  runner: Runner,
  log: Logger,
  announce: Command,
  finding: WatchFinding,
): Promise<void> {
  try {
    await runner.run(announce);
  } catch (err) {
    const why = oneLine(err);
    log.warn('ipsec watch: no gratuitous ARP after the move', { error: why });
    finding.action += `; the gratuitous ARP failed (${why}): peers send to the old port's MAC until this host's ARP probe, about 5 s (install iputils-arping)`;
  }
}
