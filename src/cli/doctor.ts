// `vfwire doctor [--json]`: the host's preconditions, one line each, with the fix.

import { configPath, loadConfig } from '../config/config.js';
import { runChecks } from '../doctor/checks.js';
import { ExitError } from '../errors.js';
import { hostRunner } from './host-runner.js';
import { makeTable } from '../table.js';

export async function doctorCommand(opts: { json?: boolean; config?: string }): Promise<void> {
  const cfg = await loadConfig(configPath(opts.config));
  const results = await runChecks({ cfg, runner: hostRunner(cfg) });
  if (opts.json) console.log(JSON.stringify(results, null, 2));
  else {
    const t = makeTable(['CHECK', 'STATUS', 'DETAIL', 'FIX']);
    for (const r of results) t.push([r.check, r.status.toUpperCase(), r.detail, r.fix ?? '']);
    console.log(t.toString());
  }
  if (results.some((r) => r.status === 'fail')) throw new ExitError(1);
}
