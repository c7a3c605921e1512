import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/config.js';
import { ValidationError } from '../../src/errors.js';
import { FIXTURES } from '../helpers/golden.js';

const MIN = 'underlay: { interface: eth0, address: 192.0.2.1 }\npfs: [{ name: eth0 }]\n';

describe('config', () => {
  it('the annotated example in templates/ is valid', () => {
    const cfg = parseConfig(readFileSync(join(FIXTURES, '../../templates/config.example.yaml'), 'utf8'));
    expect(cfg.pfs[0]!.vfs?.size).to.equal(16);
    expect(cfg.peers.map((p) => p.name)).to.deep.equal(['hostb']);
  });

  it('fills defaults for everything but the underlay and the PFs', () => {
    const cfg = parseConfig(MIN);
    expect(cfg).to.include({
      backend: 'real',
      stateDir: '/var/lib/vfwire',
      logDir: '/var/log/vfwire',
      vfMtu: 9000,
      commandTimeoutMs: 10000,
    });
    expect(cfg.underlay.mtu).to.equal(9216);
    expect(cfg.peers).to.deep.equal([]);
    expect(cfg.ipsec.offload, "the lab notes' mode").to.equal('packet');
  });

  it('failover pf-switch: two PFs, the underlay on one, static IPsec in any offload mode, the bridge overlay', () => {
    for (const offload of ['packet', 'crypto', 'none']) {
      const cfg = parseConfig(
        `underlay: { interface: p0, address: 192.0.2.1 }\npfs: [{ name: p0 }, { name: p1 }]\nfailover: { mode: pf-switch }\nipsec: { mode: static, offload: ${offload} }\n`,
      );
      expect(cfg.failover).to.deep.equal({ mode: 'pf-switch' });
    }
  });

  const refusals: [string, string, RegExp][] = [
    ['a typo in a key', MIN + 'peer: []\n', /\(top level\): Unrecognized key: "peer"/],
    [
      'the old software-crypto switch',
      MIN + 'ipsec: { mode: static, allow_software_crypto: true }\n',
      /ipsec\.allow_software_crypto was replaced by ipsec\.offload: set offload: none for CPU crypto/,
    ],
    [
      'the old crypto-offload switch',
      MIN + 'ipsec: { mode: ikev2, allow_crypto_offload: false }\n',
      /ipsec\.allow_crypto_offload was replaced by ipsec\.offload: set offload: crypto/,
    ],
    ['an unknown offload mode', MIN + 'ipsec: { offload: full }\n', /ipsec\.offload: /],
    ['a wrong type', MIN + 'vf_mtu: "9000"\n', /vf_mtu: /],
    ['a peer without an address', MIN + 'peers: [{ name: b }]\n', /peers\.0\.address/],
    [
      'a bad underlay address',
      'underlay: { interface: eth0, address: 192.0.2.300 }\npfs: [{ name: eth0 }]\n',
      /underlay\.address: must be an IPv4 address/,
    ],
    ['no PFs', 'underlay: { interface: eth0, address: 192.0.2.1 }\npfs: []\n', /pfs: must list at least one PF/],
    [
      'a VF range backwards',
      'underlay: { interface: eth0, address: 192.0.2.1 }\npfs: [{ name: eth0, vfs: "7-3" }]\n',
      /pfs\.0\.vfs: bad range "7-3"/,
    ],
    [
      'a duplicate peer',
      MIN + 'peers: [{ name: b, address: 192.0.2.2 }, { name: b, address: 192.0.2.3 }]\n',
      /"b" is listed twice/,
    ],
    [
      'a peer with our own address',
      MIN + 'peers: [{ name: b, address: 192.0.2.1 }]\n',
      /this host's own underlay address/,
    ],
    ['a VNI out of range', MIN + 'peers: [{ name: b, address: 192.0.2.2, vnis: [16777216] }]\n', /peers\.0\.vnis\.0/],
    ['not YAML', 'underlay: [', /not valid YAML/],
    ['an unsupported ipsec mode', MIN + 'ipsec: { mode: ikev3 }\n', /ipsec\.mode/],
    [
      'VF LAG with packet offload',
      MIN + 'failover: { mode: active-backup }\nipsec: { mode: static }\n',
      /failover \(VF LAG\) with ipsec\.offload packet: bonding cannot offload xfrm policies and mlx5 has no packet offload with VF LAG; use ipsec\.offload: none/,
    ],
    [
      'VF LAG with crypto offload',
      MIN + 'failover: { mode: active-backup }\nipsec: { mode: ikev2, offload: crypto }\n',
      /failover \(VF LAG\) with ipsec\.offload crypto: a failover re-adds the SAs on the new port, and packets sent meanwhile can leave in clear/,
    ],
    [
      'tc-flower with IKEv2',
      MIN + 'overlay: tc-flower\nipsec: { mode: ikev2 }\n',
      /overlay tc-flower with ipsec\.mode ikev2/,
    ],
    [
      'pf-switch with one PF',
      MIN + 'failover: { mode: pf-switch }\nipsec: { mode: static }\n',
      /failover pf-switch: moves the underlay between the NIC's two PFs; pfs lists 1/,
    ],
    [
      'pf-switch with the underlay on no PF',
      'underlay: { interface: bond0, address: 192.0.2.1 }\npfs: [{ name: p0 }, { name: p1 }]\nfailover: { mode: pf-switch }\nipsec: { mode: static }\n',
      /underlay\.interface must be the PF that holds the address first \(one of p0, p1\), not bond0/,
    ],
    [
      'pf-switch without static IPsec',
      'underlay: { interface: p0, address: 192.0.2.1 }\npfs: [{ name: p0 }, { name: p1 }]\nfailover: { mode: pf-switch }\n',
      /failover pf-switch: the move is `vfwire ipsec watch`'s, with static keys .*use ipsec\.mode: static, or failover mode active-backup/,
    ],
    [
      'pf-switch with IKEv2',
      'underlay: { interface: p0, address: 192.0.2.1 }\npfs: [{ name: p0 }, { name: p1 }]\nfailover: { mode: pf-switch }\nipsec: { mode: ikev2 }\n',
      /strongSwan keeps an offloaded SA on the netdev it was installed on/,
    ],
    [
      'pf-switch with tc-flower',
      'underlay: { interface: p0, address: 192.0.2.1 }\npfs: [{ name: p0 }, { name: p1 }]\nfailover: { mode: pf-switch }\noverlay: tc-flower\nipsec: { mode: static }\n',
      /overlay tc-flower: the eswitch forwards a VF only to its own PF's uplink, never the other port's without VF LAG; use overlay: bridge/,
    ],
    [
      'pf-switch with a miimon',
      'underlay: { interface: p0, address: 192.0.2.1 }\npfs: [{ name: p0 }, { name: p1 }]\nfailover: { mode: pf-switch, miimon: 100 }\nipsec: { mode: static }\n',
      /miimon/,
    ],
    [
      'a rekey time for static SAs',
      MIN + 'ipsec: { mode: static, rekey_time: 600 }\n',
      /ipsec\.rekey_time is strongSwan's \(ipsec\.mode: ikev2\); static SAs get new keys by `vfwire ipsec rotate`/,
    ],
    ['a rekey time under 10 s', MIN + 'ipsec: { mode: ikev2, rekey_time: 5 }\n', /ipsec\.rekey_time/],
  ];
  it("takes VF LAG with the CPU's ESP, and tc-flower in the kernel with it", () => {
    expect(
      parseConfig(MIN + 'failover: { mode: active-backup }\nipsec: { mode: static, offload: none }\n').failover,
    ).to.deep.equal({ mode: 'active-backup', miimon: 100 });
    expect(
      parseConfig(MIN + 'overlay: tc-flower\ntc_policy: skip_hw\nipsec: { mode: static, offload: none }\n').tcPolicy,
    ).to.equal('skip_hw');
  });
  for (const [what, yaml, message] of refusals) {
    it(`refuses ${what} with one line naming the key`, () => {
      expect(() => parseConfig(yaml, '/etc/vfwire/config.yaml')).to.throw(ValidationError, message);
      try {
        parseConfig(yaml);
      } catch (err) {
        expect((err as Error).message).not.to.include('\n');
      }
    });
  }
});
