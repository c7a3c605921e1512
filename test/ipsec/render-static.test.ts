import { expect } from 'chai';
import { epochKeys, keyFingerprint, type PeerSeed } from '../../src/ipsec/keys.js';
import { peerSas, renderPeerSas } from '../../src/ipsec/render-static.js';
import { deriveSaIds, hex32, orderPair } from '../../src/ipsec/sa-ids.js';
import { xfrmForm, type XfrmForm } from '../../src/ipsec/xfrm-form.js';
import { formatCommand } from '../../src/exec/step.js';
import { expectGolden } from '../helpers/golden.js';
import { CURRENT_FORM } from '../helpers/xfrm-forms.js';

// A test seed, not a secret: fixed so the golden files are stable.
const SEED: PeerSeed = { seed: Buffer.alloc(32, 0xa1), id: keyFingerprint(Buffer.alloc(32, 0xa1)) };
const A = '192.168.80.2';
const B = '192.168.80.3';
const KEYS = epochKeys(SEED, 1, [A, B]);
const text = (local: string, peer: string, peerName: string, form: XfrmForm = CURRENT_FORM) =>
  renderPeerSas({
    peerName,
    local,
    peer,
    uplink: 'enp3s0f0np0',
    keys: KEYS,
    lookahead: [epochKeys(SEED, 2, [A, B]), epochKeys(SEED, 3, [A, B])],
    priority: 12,
    form,
  })
    .map((s) => formatCommand({ argv: s.do.argv }) + (s.do.stdin ? ` <<< ${s.do.stdin}` : '\n'))
    .join('');

describe('static IPsec plans', () => {
  it("host A to host B, the lab notes' form made safe, with the next epoch's inbound SA ahead (golden)", () => {
    expectGolden('ipsec/host-a.txt', text(A, B, 'hostb'));
  });

  it("the lab notes' own form where the kernel or iproute2 predates the SA direction: a window on both SAs (golden)", () => {
    expectGolden(
      'ipsec/host-a-kernel-6.6.txt',
      text(A, B, 'hostb', xfrmForm({ kernel: [6, 6], iproute2: [6, 6], switchdev: true }, 'packet')),
    );
  });

  it('crypto offload puts only the states in the NIC; none leaves all of ESP to the kernel', () => {
    const crypto = text(A, B, 'hostb', xfrmForm({ kernel: [6, 1], iproute2: [6, 1], switchdev: true }, 'crypto'));
    expect(crypto.match(/offload dev enp3s0f0np0 dir (in|out)/g)).to.have.length(4);
    expect(crypto).not.to.match(/offload packet|policy update[^\n]*offload/);
    const none = text(A, B, 'hostb', xfrmForm({ kernel: [6, 12], iproute2: [6, 15], switchdev: false }, 'none'));
    expect(none).not.to.include('offload');
    // Both new: the SA direction is named, and the output SA has no replay window.
    expect(none).to.match(
      /spi 0x[0-9a-f]+ reqid 0x[0-9a-f]+ mode transport aead \S+ 0x[0-9a-f]+ 128 dir out sel src 192\.168\.80\.2 dst 192\.168\.80\.3 flag esn replay-window 0\n/,
    );
    const oldKernel = text(A, B, 'hostb', xfrmForm({ kernel: [6, 1], iproute2: [6, 15], switchdev: false }, 'none'));
    for (const state of oldKernel.split('\n').filter((l) => l.includes('state add')))
      expect(state).not.to.match(/ dir (in|out) |replay-window 0/);
  });

  it("never puts an upper protocol in a state's selector (mlx5 would steer ESP as UDP); the policies keep UDP 4789", () => {
    for (const line of text(A, B, 'hostb').trim().split('\n')) {
      if (line.includes('xfrm state add')) expect(line).to.match(/ sel src \S+ dst \S+ flag /);
      else expect(line).to.include('proto udp dport 4789');
    }
  });

  it('host B mirrors host A: same SPIs, reqids and keys, directions swapped (golden)', () => {
    expectGolden('ipsec/host-b.txt', text(B, A, 'hosta'));
    const [aOut, aIn] = peerSas({ local: A, peer: B, keys: KEYS });
    const [bOut, bIn] = peerSas({ local: B, peer: A, keys: KEYS });
    expect({ ...aOut, dir: 'in' }).to.deep.equal(bIn);
    expect({ ...aIn, dir: 'out' }).to.deep.equal(bOut);
    expect(aOut.key.equals(aIn.key)).to.equal(false);
  });

  it('keeps keys out of every argv: they travel on stdin only', () => {
    const hex = [KEYS.lowToHigh, KEYS.highToLow].map((k) => k.toString('hex'));
    for (const step of renderPeerSas({
      peerName: 'hostb',
      local: A,
      peer: B,
      uplink: 'p0',
      keys: KEYS,
      lookahead: [epochKeys(SEED, 2, [A, B]), epochKeys(SEED, 3, [A, B])],
      priority: 12,
      form: CURRENT_FORM,
    })) {
      for (const h of hex) {
        expect(step.do.argv.join(' ')).not.to.include(h);
        expect(step.undo?.argv.join(' ') ?? '').not.to.include(h);
      }
      expect(step.undo?.stdin).to.equal(undefined);
    }
  });

  it('binds the keys to the address pair: a renumbered host or a copied key file never gets a used key', () => {
    const other = epochKeys(SEED, 1, [A, '192.168.80.1']);
    for (const k of [other.lowToHigh, other.highToLow])
      expect([KEYS.lowToHigh, KEYS.highToLow].some((x) => x.equals(k))).to.equal(false);
    expect(
      epochKeys(SEED, 1, [B, A]).lowToHigh.equals(KEYS.lowToHigh),
      'the order of the pair does not matter',
    ).to.equal(true);
  });

  it('derives SPIs and reqids from the ordered pair, the key, the epoch and the direction', () => {
    expect(orderPair('10.0.0.10', '10.0.0.9')).to.deep.equal(['10.0.0.9', '10.0.0.10']);
    const e1 = deriveSaIds(A, B, SEED.id, 1, 'low-to-high');
    expect(deriveSaIds(B, A, SEED.id, 1, 'low-to-high')).to.deep.equal(e1);
    expect(deriveSaIds(A, B, SEED.id, 2, 'low-to-high').spi).to.not.equal(e1.spi);
    expect(deriveSaIds(A, B, 'ffffffffffffffff', 1, 'low-to-high').spi).to.not.equal(e1.spi);
    // The policies name the reqid: the SAs of every epoch and key satisfy them.
    expect(deriveSaIds(A, B, SEED.id, 2, 'low-to-high').reqid).to.equal(e1.reqid);
    expect(deriveSaIds(A, B, 'ffffffffffffffff', 1, 'low-to-high').reqid).to.equal(e1.reqid);
    expect(deriveSaIds(A, B, SEED.id, 1, 'high-to-low').spi).to.not.equal(e1.spi);
    for (let epoch = 1; epoch < 500; epoch++) {
      const { spi, reqid } = deriveSaIds(A, B, SEED.id, epoch, 'high-to-low');
      expect(spi).to.be.within(0x100, 0xffffffff);
      expect(reqid).to.be.within(1, 0xffffffff);
    }
    expect(hex32(0x3)).to.equal('0x00000003');
  });
});
