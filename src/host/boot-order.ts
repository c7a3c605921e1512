// The PF devices host setup waits for at boot, as install.sh (in its unit) or the package's
// postinst (in a drop-in) rendered them from `pfs`, against the config now: PFs renamed or added
// since leave host setup waiting for a device that never comes (systemd's device timeout, then
// it fails) or running before a PF it needs exists.

import { existsSync, readFileSync } from 'node:fs';
import { pass, warn, type CheckResult } from '../check-result.js';
import type { Config } from '../config/config.js';

const UNIT = '/etc/systemd/system/vfwire-host-setup.service';
const DROPIN = '/etc/systemd/system/vfwire-host-setup.service.d/pfs.conf';
const PREFIX = 'sys-subsystem-net-devices-';

/** systemd-escape --path, undone for a netdev name (no '/' in it): \xNN back to its byte. */
function unescapeDevice(unit: string): string {
  return unit.replace(/\\x([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** The netdev names a unit text orders after (`After=sys-subsystem-net-devices-NAME.device`). */
export function orderedPfs(text: string): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(/^After=(.*)$/gm))
    for (const unit of m[1]!.split(/\s+/))
      if (unit.startsWith(PREFIX) && unit.endsWith('.device'))
        names.push(unescapeDevice(unit.slice(PREFIX.length, -'.device'.length)));
  return names;
}

/** The check, from the rendered files there are; none where no boot unit is installed. */
export function bootOrderCheck(
  cfg: Pick<Config, 'pfs' | 'path'>,
  files: { unit?: string; dropin?: string },
): CheckResult | undefined {
  const name = 'boot order';
  const text = files.dropin ?? files.unit;
  if (text === undefined) return undefined;
  const redo = files.dropin !== undefined ? 'dpkg-reconfigure vfwire' : './install.sh again';
  const ordered = [...new Set(orderedPfs(text))].sort();
  const wanted = [...new Set(cfg.pfs.map((p) => p.name))].sort();
  if (ordered.join(' ') === wanted.join(' '))
    return pass(name, `host setup waits for ${wanted.join(', ')} at boot, as in ${cfg.path}`);
  return warn(
    name,
    `host setup waits at boot for ${ordered.join(', ') || 'no PF device'}; ${cfg.path} names ${wanted.join(', ')}`,
    `${redo} (it renders the PF ordering from the config)`,
  );
}

/** The installed unit and drop-in texts, as they are on this host. */
export function readBootOrderFiles(): { unit?: string; dropin?: string } {
  const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : undefined);
  const unit = read(UNIT);
  const dropin = read(DROPIN);
  return { ...(unit !== undefined ? { unit } : {}), ...(dropin !== undefined ? { dropin } : {}) };
}
