import { expect } from 'chai';
import { overlayFor, type Member, type VniView } from '../../src/overlay/overlay.js';
import { config, REAL_CONFIG } from '../helpers/inputs.js';

const member: Member = { leaseKey: 'u:0', rep: 'enp3s0f0r0', mac: '52:54:00:00:00:01', pci: '0000:03:00.2', mtu: 8900 };
const view = (over: Partial<VniView> = {}): VniView => ({
  vni: 100,
  plannedHere: false,
  peers: ['192.168.80.3'],
  admission: [{ address: '192.168.80.3' }],
  members: [],
  ...over,
});
const kinds = (steps: { kind: string }[]) => steps.map((s) => s.kind);

describe('the Overlay interface (overlay/overlay.ts)', () => {
  it('is chosen once from the config; only tc-flower with IPsec needs the SAs for every start', () => {
    expect(overlayFor(config(REAL_CONFIG)).kind).to.equal('bridge');
    expect(overlayFor(config(REAL_CONFIG + 'ipsec: { mode: static }\n')).sasForEveryStart).to.equal(false);
    expect(overlayFor(config(REAL_CONFIG + 'overlay: tc-flower\n')).sasForEveryStart).to.equal(false);
    expect(overlayFor(config(REAL_CONFIG + 'overlay: tc-flower\nipsec: { mode: static }\n')).sasForEveryStart).to.equal(
      true,
    );
  });

  it('bridge: a first member creates the VNI after its admission and guard (one nft transaction) and joins; a second only joins; no host state', async () => {
    const bridge = overlayFor(config(REAL_CONFIG));
    const first = bridge.join(view(), member, [], true);
    expect(kinds(first.steps)).to.deep.equal([
      'admission',
      'rep-guard',
      'vxlan-create',
      'bridge-create',
      'vxlan-master',
      'vxlan-peer',
      'bridge-up',
      'rep-join',
    ]);
    expect(first.newVni).to.deep.equal({ peers: ['192.168.80.3'] });
    const second = bridge.join(view({ live: { peers: ['192.168.80.3'] } }), { ...member, leaseKey: 'u:1' }, [], false);
    expect(kinds(second.steps)).to.deep.equal(['rep-guard', 'rep-join']);
    expect(second.newVni).to.equal(undefined);
    expect(
      await bridge.hostSteps({ run: () => Promise.reject(new Error('the bridge reads nothing at host setup')) }),
    ).to.deep.equal([]);
    const moved = bridge.join(view({ live: { peers: ['192.168.80.9'] } }), member, [], true);
    expect(moved.peerUpdate, 'peers changed in the config').to.deep.equal({ peers: ['192.168.80.3'] });
  });

  it('tc-flower: the VF first, one host check per plan, admission with the first member', () => {
    const tcf = overlayFor(config(REAL_CONFIG + 'overlay: tc-flower\n'));
    const vf = { kind: 'vf-mac', device: 'x', owner: { kind: 'host' as const }, do: { argv: ['true'] } };
    const first = tcf.join(view(), member, [vf], true);
    expect(kinds(first.steps).slice(0, 3)).to.deep.equal(['vf-mac', 'tcf-vxlan-check', 'admission']);
    expect(first.newVni?.peers).to.deep.equal(['192.168.80.3']);
    const next = tcf.join(
      view({ plannedHere: true, members: [member] }),
      { ...member, leaseKey: 'u:1', rep: 'enp3s0f0r1', mac: '52:54:00:00:00:02', pci: '0000:03:00.3' },
      [vf],
      false,
    );
    expect(kinds(next.steps)).to.not.include('tcf-vxlan-check').and.not.include('admission');
  });
});
