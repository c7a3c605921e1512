// `vfwire gc [--dry-run]`: free what a crash left behind: leases whose VM libvirt no longer
// runs, and vfwire bridges, VXLAN devices and bridge ports that no lease accounts for.

import { configPath, loadConfig, vxlanSocketNetns, type Config } from '../config/config.js';
import { readAdmission } from '../overlay/admission.js';
import { vfwireAliases } from '../domain/device-aliases.js';
import { ValidationError, VfwireError } from '../errors.js';
import { undoAll } from '../exec/apply.js';
import { ExecRunner, type Runner } from '../exec/runner.js';
import { planGc, type HostLink } from '../gc/plan-gc.js';
import { readBootId } from '../host/boot-id.js';
import { ErrorCode, isLibvirtError, openConnection } from '../libvirt/index.js';
import { closeLogger, createLogger } from '../log.js';
import { dropLeases, forgetEarlierBoot } from '../ledger/record.js';
import { withLedger } from '../ledger/store.js';
import { formatCommand } from '../exec/step.js';
import { ip } from '../exec/tools.js';

// A VM between its prepare hook and running QEMU is not "gone"; leave young leases alone.
export const DEFAULT_GRACE_S = 120;

export async function gcCommand(opts: { dryRun?: boolean; graceSeconds?: number; config?: string }): Promise<void> {
  const grace = opts.graceSeconds ?? DEFAULT_GRACE_S;
  if (!Number.isFinite(grace) || grace < 0)
    throw new ValidationError('--grace: must be a number of seconds, 0 or more');
  const graceMs = grace * 1000;
  const cfg = await loadConfig(configPath(opts.config));
  const runner = new ExecRunner(cfg.commandTimeoutMs);
  const log = createLogger(cfg.logDir, 'gc', { syslog: cfg.syslog });
  try {
    const { running, liveAliases } = await runningDomains(cfg);
    await withLedger(
      cfg.stateDir,
      async (txn) => {
        if (!opts.dryRun && forgetEarlierBoot(txn.data, await readBootId())) await txn.save();
        const admission = {
          netns: vxlanSocketNetns(cfg),
          vnis: [...(await readAdmission(runner, vxlanSocketNetns(cfg))).vnis.keys()],
        };
        const plan = planGc({
          ledger: txn.data,
          running,
          links: await hostLinks(cfg, runner),
          notBefore: new Date(Date.now() - graceMs),
          liveAliases,
          admission,
        });
        for (const l of plan.staleLeases) console.log(`lease ${l.vm}#${l.key.split('/')[1]}: ${l.why}`);
        for (const line of plan.leftovers) console.log(`leftover ${line}`);
        if (plan.commands.length === 0) return console.log('nothing to collect');
        if (opts.dryRun) {
          console.log('would run:');
          for (const c of plan.commands) console.log(`  ${formatCommand(c)}`);
          return;
        }
        const errors = await undoAll(plan.commands, runner);
        dropLeases(
          txn.data,
          plan.staleLeases.map((l) => l.key),
        );
        await txn.save();
        log.info('gc', {
          released: plan.staleLeases.map((l) => l.key),
          leftovers: plan.leftovers,
          failed: errors.map((e) => e.message),
        });
        for (const e of errors) console.log(`failed: ${e.message}`);
        console.log(`released ${plan.staleLeases.length} lease(s), removed ${plan.leftovers.length} leftover(s)`);
      },
      { timeoutMs: cfg.lockTimeoutMs },
    );
  } finally {
    await closeLogger(log);
  }
}

/** The running domains' UUIDs and the vfwire device aliases of their live XML. */
async function runningDomains(cfg: Config): Promise<{ running: Set<string>; liveAliases: Map<string, Set<string>> }> {
  try {
    const conn = await openConnection(cfg.libvirtUri);
    try {
      const refs = await conn.listDomains({ active: true });
      const liveAliases = new Map<string, Set<string>>();
      for (const { uuid } of refs) {
        // A domain that stopped meanwhile is left out: not asked, so none of its leases is judged detached.
        const xml = await conn
          .lookupDomainByUuid(uuid)
          .then(async (d) => {
            try {
              return await d.xmlDesc();
            } finally {
              d.free();
            }
          })
          .catch((err: unknown) => {
            if (isLibvirtError(err, ErrorCode.NoDomain)) return undefined;
            throw err;
          });
        if (xml !== undefined) liveAliases.set(uuid, vfwireAliases(xml));
      }
      return { running: new Set(refs.map((d) => d.uuid)), liveAliases };
    } finally {
      await conn.close();
    }
  } catch (err) {
    throw new VfwireError(`cannot ask libvirt (${cfg.libvirtUri}) which VMs run, so gc frees nothing`, { cause: err });
  }
}

/** Links of the host netns and, where the VXLAN devices are made elsewhere, of the underlay's. */
async function hostLinks(cfg: Config, runner: Runner): Promise<HostLink[]> {
  const spaces = [...new Set([cfg.netns, cfg.underlay.netns])];
  const out: HostLink[] = [];
  for (const netns of spaces) {
    const { stdout } = await runner.run({ argv: ip(netns, '-j', 'link', 'show') });
    for (const l of JSON.parse(stdout) as { ifname: string; master?: string }[])
      out.push({ name: l.ifname, master: l.master, netns });
  }
  return out;
}
