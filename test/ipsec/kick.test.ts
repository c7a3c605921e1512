// The kick after an epoch move, on real netns: one datagram from the underlay address to the
// peer's VXLAN port, a VXLAN header with VNI 0 and nothing else.

import { expect } from 'chai';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { ExecRunner } from '../../src/exec/runner.js';

const runner = new ExecRunner(10_000);
import { kickArgv } from '../../src/ipsec/kick.js';

describe('ipsec kick', function () {
  this.timeout(20_000);
  const tag = randomBytes(3).toString('hex');
  const [nsA, nsB] = [`vfwt-kick-a-${tag}`, `vfwt-kick-b-${tag}`];
  const ip = (...args: string[]) => execa('ip', args);

  before(async () => {
    await ip('netns', 'add', nsA);
    await ip('netns', 'add', nsB);
    await ip('-n', nsA, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', nsB);
    await ip('-n', nsA, 'addr', 'add', '198.18.7.1/24', 'dev', 'u0');
    await ip('-n', nsB, 'addr', 'add', '198.18.7.2/24', 'dev', 'u0');
    await ip('-n', nsA, 'link', 'set', 'u0', 'up');
    await ip('-n', nsB, 'link', 'set', 'u0', 'up');
  });
  after(async () => {
    for (const ns of [nsA, nsB]) await execa('ip', ['netns', 'del', ns], { reject: false });
  });

  it('sends a VNI 0 VXLAN header from the local underlay address to the peer, from inside the netns', async () => {
    const listen = `const s = require('dgram').createSocket('udp4');
      s.on('message', (m, r) => { console.log(r.address + ' ' + m.toString('hex')); process.exit(0); });
      s.bind(4789, '198.18.7.2', () => console.log('ready'));
      setTimeout(() => process.exit(3), 10000);`;
    const listener = execa('ip', ['netns', 'exec', nsB, process.execPath, '-e', listen]);
    await new Promise<void>((resolve) => listener.stdout!.once('data', () => resolve()));
    await runner.run({ argv: kickArgv(nsA, '198.18.7.1', '198.18.7.2') });
    const { stdout } = await listener;
    expect(stdout.trim().split('\n').at(-1)).to.equal('198.18.7.1 0800000000000000');
  });
});
