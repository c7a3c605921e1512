// vfwire's real-host plans replayed through the strict mlx5 model in the order an operator runs
// them on a freshly booted ConnectX host: host setup, ipsec up, a VM's start and its stop. What
// vfwire renders for a host must be what that host's driver, kernel and iproute2 accept; what
// vfwire refuses up front, the model refuses too.

import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { xfrmForm } from '../../src/ipsec/xfrm-form.js';
import { epochKeys, keyFingerprint } from '../../src/ipsec/keys.js';
import { renderPeerSas } from '../../src/ipsec/render-static.js';
import type { Command } from '../../src/exec/step.js';
import { FIXTURES } from '../helpers/golden.js';
import { Mlx5Host } from './model.js';
import { commandsFromPlanText, replay } from './replay.js';

const PF = 'enp3s0f0np0';
const A = '192.168.80.2';
const B = '192.168.80.3';
const SEED = { seed: Buffer.alloc(32, 0x3c), id: keyFingerprint(Buffer.alloc(32, 0x3c)) };

const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
/** The `# do` half of a host-setup golden file. */
const doHalf = (text: string) => commandsFromPlanText(text.split('# undo')[0]!);

/** A ConnectX-6 Dx after a boot: eswitch legacy, SR-IOV off, PF down, no address. */
function freshHost(kernel: string, iproute2: string): Mlx5Host {
  return new Mlx5Host({
    kernel,
    iproute2,
    pfs: [{ name: PF, pci: '0000:03:00.0', totalVfs: 4, numVfs: 0, eswitch: 'legacy', up: false }],
  });
}

function expectAccepted(host: Mlx5Host, commands: Command[], what: string): void {
  const r = replay(host, commands);
  if (!r.ok)
    expect.fail(
      `${what}: command ${r.index} refused (${r.refusal.rule}): ${r.command.argv.join(' ')}: ${r.refusal.message}`,
    );
}

function ipsecUp(kernel: [number, number], iproute2: [number, number]): Command[] {
  const form = xfrmForm({ kernel, iproute2, switchdev: true }, 'packet');
  const keys = epochKeys(SEED, 1, [A, B]);
  return renderPeerSas({
    peerName: 'hostb',
    local: A,
    peer: B,
    uplink: PF,
    keys,
    lookahead: [epochKeys(SEED, 2, [A, B])],
    priority: 12,
    form,
  }).map((s) => s.do);
}

describe('real-host plans through the strict mlx5 model', () => {
  it('a fresh host: host setup, ipsec up, a VM start and its stop are all accepted (kernel 6.12, iproute2 6.15)', () => {
    const host = freshHost('6.12', '6.15');
    expectAccepted(host, doHalf(fixture('failover/host-a-plain.txt')), 'host setup');
    expectAccepted(host, ipsecUp([6, 12], [6, 15]), 'ipsec up');
    expectAccepted(host, commandsFromPlanText(fixture('plans/real-first-lease.txt')), 'VM start');
    expect(host.state().pfs[PF]!.vfs[0]!.mac).to.equal('52:54:00:00:00:01');
    expectAccepted(host, commandsFromPlanText(fixture('plans/real-last-release.txt')), 'VM stop');
    expect(host.state().pfs[PF]!.vfs[0]!.mac).to.equal('00:00:00:00:00:00');
  });

  it('the golden static SA plans of both hosts are what their host accepts', () => {
    for (const name of ['ipsec/host-a.txt', 'ipsec/host-b.txt']) {
      const host = freshHost('6.12', '6.15');
      expectAccepted(
        host,
        doHalf(fixture(name.replace('ipsec/host-', 'failover/host-').replace('.txt', '-plain.txt'))),
        'host setup',
      );
      expectAccepted(host, commandsFromPlanText(fixture(name)), name);
    }
  });

  it('whatever xfrm form vfwire renders for a kernel and iproute2, that host accepts', () => {
    const hosts: [[number, number], [number, number]][] = [
      [
        [6, 6],
        [6, 6],
      ],
      [
        [6, 8],
        [6, 8],
      ],
      [
        [6, 10],
        [6, 10],
      ],
      [
        [6, 10],
        [6, 11],
      ],
      [
        [6, 12],
        [6, 10],
      ],
      [
        [6, 6],
        [6, 15],
      ],
      [
        [6, 12],
        [6, 15],
      ],
    ];
    for (const [k, i] of hosts) {
      const host = freshHost(k.join('.'), i.join('.'));
      expectAccepted(host, doHalf(fixture('failover/host-a-plain.txt')), `host setup on ${k.join('.')}/${i.join('.')}`);
      expectAccepted(host, ipsecUp(k, i), `ipsec up on kernel ${k.join('.')}, iproute2 ${i.join('.')}`);
    }
  });

  it('what vfwire refuses up front, the driver would refuse too', () => {
    // iproute2 6.10 with ESN and window 0 on the output SA (the form for 6.11+).
    const host = freshHost('6.12', '6.10');
    expectAccepted(host, doHalf(fixture('failover/host-a-plain.txt')), 'host setup');
    const newForm = ipsecUp([6, 12], [6, 15]);
    const r = replay(host, newForm);
    expect(r.ok ? 'accepted' : r.refusal.rule).to.equal('iproute2.xfrm-state.esn-needs-replay-window');
    expect(() => xfrmForm({ kernel: [6, 5], iproute2: [6, 15], switchdev: true }, 'packet')).to.throw(
      /switchdev mode needs 6\.6/,
    );
    const old = freshHost('6.5', '6.15');
    expectAccepted(old, doHalf(fixture('failover/host-a-plain.txt')), 'host setup on 6.5');
    const pre66 = replay(old, ipsecUp([6, 6], [6, 15]));
    expect(pre66.ok ? 'accepted' : pre66.refusal.rule, 'packet offload in switchdev on 6.5').to.equal(
      'mlx5.ipsec.switchdev-needs-6.6',
    );
  });

  it('the old VF plan (spoofchk on, trust off) fails on a switchdev PF after the MAC was applied, as the review found', () => {
    const host = freshHost('6.12', '6.15');
    expectAccepted(host, doHalf(fixture('failover/host-a-plain.txt')), 'host setup');
    const r = replay(
      host,
      commandsFromPlanText(`ip link set dev ${PF} vf 0 mac 52:54:00:00:00:01 spoofchk on trust off`),
    );
    expect(r.ok).to.equal(false);
    if (!r.ok) expect(r.refusal.rule).to.equal('mlx5.esw.spoofchk-legacy-only');
    expect(host.state().pfs[PF]!.vfs[0]!.mac, 'rtnetlink applied the MAC first').to.equal('52:54:00:00:00:01');
  });

  it('tc-flower after ipsec up: a one-destination BUM rule is accepted, a two-destination one refused, as vfwire refuses it before anything runs', () => {
    const host = freshHost('6.12', '6.15');
    expectAccepted(host, doHalf(fixture('failover/host-a-plain.txt')), 'host setup');
    expectAccepted(host, ipsecUp([6, 12], [6, 15]), 'ipsec up');
    expectAccepted(host, commandsFromPlanText(fixture('tc/one-vf-one-peer-host-a.txt')), 'one VF, one peer');
    const two = freshHost('6.12', '6.15');
    expectAccepted(two, doHalf(fixture('failover/host-a-plain.txt')), 'host setup');
    expectAccepted(two, ipsecUp([6, 12], [6, 15]), 'ipsec up');
    // That fixture starts at the first join; the tc host device comes from host setup.
    const tcHost = fixture('tc/one-vf-one-peer-host-a.txt').split('# web1')[0]!;
    expectAccepted(two, commandsFromPlanText(tcHost), 'tc host setup');
    const r = replay(two, commandsFromPlanText(fixture('tc/two-vfs-two-peers.txt')));
    expect(r.ok).to.equal(false);
    if (!r.ok)
      expect(r.refusal.rule, `${r.command.argv.join(' ')}: ${r.refusal.message}`).to.equal(
        'mlx5.tc.ipsec-encap-multi-dest',
      );
  });
});
