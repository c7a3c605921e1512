// `vfwire plan VM [--xml FILE]`: print the exact commands a start of VM would run, run nothing.

import { readFile } from 'node:fs/promises';
import { configPath, loadConfig } from '../config/config.js';
import { parseDomainXml } from '../domain/parse-domain.js';
import { VfwireError } from '../errors.js';
import { ExecRunner } from '../exec/runner.js';
import { readInventory } from '../host/inventory.js';
import { readLedger } from '../ledger/store.js';
import { planPrepare } from '../plan/prepare.js';
import { formatCommand } from '../exec/step.js';

export interface PlanOptions {
  xml?: string;
  json?: boolean;
  config?: string;
}

export async function planCommand(vm: string, opts: PlanOptions): Promise<void> {
  const cfg = await loadConfig(configPath(opts.config));
  const xml = opts.xml
    ? await readFile(opts.xml, 'utf8')
    : (
        await new ExecRunner(cfg.commandTimeoutMs).run({
          argv: ['virsh', '-c', cfg.libvirtUri, 'dumpxml', '--inactive', '--domain', vm],
        })
      ).stdout;
  const req = parseDomainXml(xml);
  if (!req.interfaces)
    throw new VfwireError(
      `domain ${req.name} has no vfwire metadata: nothing to do (tag it with: vfwire vm set ${req.name} --vni N)`,
    );
  const inv = await readInventory(
    cfg.sysfsRoot,
    cfg.pfs.map((p) => p.name),
  );
  const plan = planPrepare(req, inv, await readLedger(cfg.stateDir), cfg);
  if (opts.json) {
    console.log(JSON.stringify(plan, null, 2));
    return;
  }
  for (const l of plan.leases)
    console.log(
      `# interface ${l.index}: ${l.pf} vf ${l.vf} (${l.pci}), representor ${l.rep}, VNI ${l.vni}, MAC ${l.mac}, MTU ${l.mtu}`,
    );
  for (const s of plan.steps) console.log(formatCommand(s.do));
}
