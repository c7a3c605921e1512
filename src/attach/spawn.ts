// Starting the attach worker from the `started` hook. libvirt reads a hook's stdout and stderr
// until they close and holds the start job meanwhile; the worker waits for that job. So the
// worker gets no inherited pipes (stdio ignored), its own session (detached), and the hook
// returns at once.

import { spawn } from 'node:child_process';
import { entryPoint } from '../program-files.js';

const WORKER = entryPoint('attach-main.js');

export function spawnAttachWorker(configPath: string, vm: string, uuid: string, startedAt: number): number | undefined {
  const child = spawn(process.execPath, [WORKER, configPath, uuid, vm, String(startedAt)], {
    detached: true,
    stdio: 'ignore',
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
  });
  child.unref();
  return child.pid;
}
