// `vfwire gc [--dry-run]`: free what a crash left behind: leases whose VM libvirt no longer
// runs, and vfwire bridges, VXLAN devices, bridge ports and OVS ports and rules that no lease
// accounts for (gc/collect.ts, once libvirt said which VMs run).

import { configPath, loadConfig, type Config } from '../config/config.js';
import { vfwireAliases } from '../domain/device-aliases.js';
import { ValidationError, VfwireError } from '../errors.js';
import { ExecRunner } from '../exec/runner.js';
import { ErrorCode, isLibvirtError, openConnection } from '../libvirt/index.js';
import { closeLogger, createLogger } from '../log.js';
import { collectGarbage } from '../gc/collect.js';

// A VM between its prepare hook and running QEMU is not "gone"; leave young leases alone.
export const DEFAULT_GRACE_S = 120;

export async function gcCommand(opts: { dryRun?: boolean; graceSeconds?: number; config?: string }): Promise<void> {
  const grace = opts.graceSeconds ?? DEFAULT_GRACE_S;
  if (!Number.isFinite(grace) || grace < 0)
    throw new ValidationError('--grace: must be a number of seconds, 0 or more');
  const cfg = await loadConfig(configPath(opts.config));
  const runner = new ExecRunner(cfg.commandTimeoutMs);
  const log = createLogger(cfg.logDir, 'gc', { syslog: cfg.syslog });
  try {
    const { running, liveAliases } = await runningDomains(cfg);
    await collectGarbage(
      cfg,
      { runner, log },
      { running, liveAliases, graceMs: grace * 1000, dryRun: opts.dryRun },
      (line) => console.log(line),
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
