// The watch's wake-up: `ip xfrm monitor` in a netns of the test's own, on this kernel's xfrm
// (it has no ESP, but policies and their events are the same netlink).

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { xfrmEvents } from '../../src/ipsec/xfrm-events.js';
import { sleep } from '../../src/wait.js';
import { runner } from '../helpers/sim.js';

describe('xfrm events (ipsec watch wakes on a kernel change)', function () {
  this.timeout(20_000);
  const ns = `vfwt${randomBytes(3).toString('hex')}-x`;
  const policy = ['src', '198.18.0.1', 'dst', '198.18.0.2', 'proto', 'udp', 'dport', '4789', 'dir', 'out'];

  before(() => runner.run({ argv: ['ip', 'netns', 'add', ns] }));
  after(() => runner.run({ argv: ['ip', 'netns', 'del', ns] }));

  it('times out without a change, wakes at once on one, and keeps one that came between waits', async () => {
    const events = xfrmEvents(ns);
    try {
      await sleep(300); // the monitor subscribes
      expect(await events.next(300)).to.equal('timeout');
      const t0 = Date.now();
      const woke = events.next(10_000);
      await runner.run({ argv: ['ip', '-n', ns, 'xfrm', 'policy', 'add', ...policy, 'action', 'block'] });
      expect(await woke).to.equal('event');
      expect(Date.now() - t0, 'well before the interval').to.be.below(5000);
      // A flush while nobody waits (the watch is in a round): the next wait returns at once.
      await runner.run({ argv: ['ip', '-n', ns, 'xfrm', 'policy', 'flush'] });
      await sleep(300);
      expect(await events.next(10_000)).to.equal('event');
      expect(await events.next(300), 'and only once').to.equal('timeout');
    } finally {
      events.close();
    }
  });
});
