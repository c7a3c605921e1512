import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processStartTimes } from '../../src/host/daemon-start.js';

describe('daemon start times from /proc', () => {
  let proc: string;
  before(() => {
    proc = mkdtempSync(join(tmpdir(), 'vfwt-proc-'));
    writeFileSync(join(proc, 'stat'), 'cpu  1 2 3\nbtime 1700000000\nprocesses 9\n');
    const stat = (pid: number, comm: string, ticks: number) =>
      `${pid} (${comm}) S 1 ${pid} ${pid} 0 -1 4194560 ${'0 '.repeat(8)}20 0 1 0 ${ticks} 1000 10\n`;
    for (const [pid, comm, ticks] of [
      [42, 'libvirtd', 12345],
      [43, 'not libvirtd', 1],
      [44, 'bash', 5],
    ] as const) {
      mkdirSync(join(proc, String(pid)));
      writeFileSync(join(proc, String(pid), 'stat'), stat(pid, comm, ticks));
    }
    mkdirSync(join(proc, 'self'));
  });
  after(() => rmSync(proc, { recursive: true, force: true }));

  it('finds the daemon by its comm, even with spaces in other comms, and converts ticks since boot', async () => {
    expect(await processStartTimes(['libvirtd', 'virtqemud'], proc)).to.deep.equal([
      { name: 'libvirtd', startedMs: (1700000000 + 123.45) * 1000 },
    ]);
  });

  it("reads this machine's running libvirtd (bootstrap starts it) as started in the past", async function () {
    const [d] = await processStartTimes(['libvirtd']);
    if (!d) return this.skip();
    expect(d.startedMs)
      .to.be.below(Date.now())
      .and.above(Date.now() - 30 * 24 * 3600_000);
  });
});
