// vfwire's xfrm commands against this kernel, through an iproute2 new enough for `offload packet`
// (scripts/bootstrap.sh unpacks bookworm-backports' ip in /opt/vfwire/iproute2), in a netns made
// for the test. The kernel here has no AES-GCM, so an SA is validated up to the algorithm lookup;
// the policies are accepted as they are.

import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { renderPeerSas } from '../../src/ipsec/render-static.js';
import { epochKeys, keyFingerprint } from '../../src/ipsec/keys.js';
import { xfrmForm } from '../../src/ipsec/xfrm-form.js';
import { parseIproute2Version, parseKernelRelease } from '../../src/host/versions.js';
import { release } from 'node:os';

const NEW_IP = process.env.VFWIRE_TEST_IP ?? '/opt/vfwire/iproute2/bin/ip';
const SEED = { seed: Buffer.alloc(32, 0x5a), id: keyFingerprint(Buffer.alloc(32, 0x5a)) };
const KEYS = epochKeys(SEED, 3, ['198.18.0.1', '198.18.0.2']);
const KEY_HEX = [KEYS.lowToHigh, KEYS.highToLow].map((k) => k.toString('hex'));

describe('static IPsec commands on this kernel (iproute2 >= 6.2)', function () {
  this.timeout(30_000);
  const ns = `vfwt-xfrm-${process.pid}`;
  const run = (args: string[], input?: string) => execa(NEW_IP, ['-n', ns, ...args], { reject: false, input });

  before(async function () {
    if (!existsSync(NEW_IP)) {
      if (process.env.CI) throw new Error(`${NEW_IP} missing: scripts/bootstrap.sh installs it`);
      this.skip();
    }
    await execa('ip', ['netns', 'add', ns]);
    await execa('ip', ['-n', ns, 'link', 'add', 'enp3s0f0np0', 'type', 'veth', 'peer', 'name', 'peer0']);
    await execa('ip', ['-n', ns, 'addr', 'add', '198.18.0.1/24', 'dev', 'enp3s0f0np0']);
    await execa('ip', ['-n', ns, 'link', 'set', 'enp3s0f0np0', 'up']);
  });
  after(() => execa('ip', ['netns', 'del', ns], { reject: false }));

  // The form vfwire picks for this kernel and that ip, in packet mode.
  const render = async () => {
    const form = xfrmForm(
      {
        kernel: parseKernelRelease(release()),
        iproute2: parseIproute2Version((await execa(NEW_IP, ['-V'])).stdout),
        switchdev: false,
      },
      'packet',
    );
    return renderPeerSas({
      peerName: 'sim-b',
      local: '198.18.0.1',
      peer: '198.18.0.2',
      uplink: 'enp3s0f0np0',
      keys: KEYS,
      lookahead: [epochKeys(SEED, 4, ['198.18.0.1', '198.18.0.2'])],
      priority: 12,
      form,
    });
  };

  it("each SA parses and passes the kernel's checks up to the missing AES-GCM", async () => {
    for (const s of (await render()).filter((x) => x.kind.startsWith('xfrm-state'))) {
      const r = await run(['-batch', '-'], s.do.stdin);
      expect(r.stderr, s.kind).to.include('Requested AEAD algorithm not found');
      for (const k of KEY_HEX) expect(r.stderr, 'no key in the error').not.to.include(k);
    }
  });

  it('the policies are accepted, and their undo removes them', async () => {
    const steps = await render();
    for (const s of steps.filter((x) => x.kind.startsWith('xfrm-policy'))) {
      const r = await run(s.do.argv.slice(1));
      expect(r.exitCode, r.stderr).to.equal(0);
    }
    const list = (await run(['xfrm', 'policy', 'list'])).stdout;
    expect(list).to.match(/src 198\.18\.0\.1\/32 dst 198\.18\.0\.2\/32 proto udp dport 4789\s+dir out priority 12/);
    expect(list).to.match(/src 198\.18\.0\.2\/32 dst 198\.18\.0\.1\/32 proto udp dport 4789\s+dir in priority 12/);
    for (const s of steps.filter((x) => x.kind.startsWith('xfrm-policy')))
      expect((await run(s.undo!.argv.slice(1))).exitCode).to.equal(0);
    expect((await run(['xfrm', 'policy', 'list'])).stdout.trim()).to.equal('');
  });
});
