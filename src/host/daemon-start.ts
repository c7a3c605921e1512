// When a running daemon started, from /proc: libvirt reads its hooks only at start, so a hook
// file newer than the daemon is installed but not loaded (libvirt src/util/virhook.c
// virHookInitialize probes which scripts exist once, when the daemon starts).

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Start times (ms since the epoch) of the processes named `comm`; starttime is in USER_HZ ticks, 100 on Linux (proc(5)). */
export async function processStartTimes(
  names: string[],
  proc = '/proc',
  clockTicks = 100,
): Promise<{ name: string; startedMs: number }[]> {
  const btime = Number(/^btime (\d+)$/m.exec(await readFile(join(proc, 'stat'), 'utf8'))?.[1]);
  const out: { name: string; startedMs: number }[] = [];
  for (const pid of (await readdir(proc)).filter((d) => /^\d+$/.test(d))) {
    const stat = await readFile(join(proc, pid, 'stat'), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ESRCH') return undefined; // exited while we looked
      throw err;
    });
    if (!stat) continue;
    const m = /^\d+ \((.*)\) (.*)$/s.exec(stat);
    if (!m || !names.includes(m[1]!)) continue;
    // Fields after "(comm)": state is field 3, starttime field 22 (proc(5)).
    const startTicks = Number(m[2]!.split(' ')[19]);
    out.push({ name: m[1]!, startedMs: (btime + startTicks / clockTicks) * 1000 });
  }
  return out;
}
