// vfwire's swanctl.conf against Debian's strongSwan: two charons, one per network namespace
// ("host A" and "host B", joined by a veth underlay in 198.18.0.0/15), each loaded through
// swanctl as vfwire loads it. What this kernel cannot do (it has neither ESP offload on veth nor
// ESP/AES-GCM at all) is asserted as exactly that: the IKE_SA comes up, the CHILD_SA is refused
// by the kernel. Each charon runs as test/helpers/charon.ts starts it (private /run, own
// strongswan.conf) and logs to its temp dir.

import { expect } from 'chai';
import { waitFor } from '../../src/wait.js';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import {
  chooseOffload,
  parseStrongSwanVersion,
  renderSwanctlConf,
  renderSwanctlSecrets,
  strongSwanSupportsPacketOffload,
  swanctlNames,
  type PeerAuth,
  type SwanctlInput,
  type SwanctlOffload,
} from '../../src/ipsec/swanctl.js';
import { loadAllArgv, readStrongSwanVersion, writeSwanctlFiles } from '../../src/ipsec/swanctl-charon.js';
import {
  CHARON,
  startCharon as startTestCharon,
  stopCharon as stopTestCharon,
  type Charon,
} from '../helpers/charon.js';

// A test key, not a secret; the test checks it never shows in a log or in swanctl's output.
const PSK = Buffer.from(`vfwire-test-psk-${randomBytes(12).toString('hex')}`);

interface Host {
  name: 'hosta' | 'hostb';
  address: string;
  netns: string;
  /** The charon's own directory: strongswan.conf, the swanctl dir, vici socket, log. */
  dir: string;
  uri: string;
  charon?: Charon;
}

// A single charon per host, with just the plugins vfwire needs (Debian's modular config loads
// them all; kdf is needed since 5.9.8 for IKEv2 key derivation).
const strongswanConf = (dir: string) => `charon {
  load_modular = no
  load = random nonce openssl kdf pem pkcs1 pkcs8 x509 pubkey revocation constraints kernel-netlink socket-default vici
  plugins {
    vici {
      socket = unix://${dir}/charon.vici
    }
  }
  filelog {
    charon {
      path = ${dir}/charon.log
      default = 1
      cfg = 2
      flush_line = yes
    }
  }
}
swanctl {
  load = pem pkcs1 pkcs8 x509 pubkey revocation constraints openssl random
}
`;

describe('IKEv2 mode against a real charon (Debian strongSwan)', function () {
  this.timeout(60_000);
  const id = randomBytes(3).toString('hex');
  const root = mkdtempSync(join(tmpdir(), 'vfwt-ike-'));
  const hosts: [Host, Host] = [
    {
      name: 'hosta',
      address: '198.18.77.1',
      netns: `vfwt-ike${id}-a`,
      dir: join(root, 'a'),
      uri: `unix://${root}/a/charon.vici`,
    },
    {
      name: 'hostb',
      address: '198.18.77.2',
      netns: `vfwt-ike${id}-b`,
      dir: join(root, 'b'),
      uri: `unix://${root}/b/charon.vici`,
    },
  ];
  const [a, b] = hosts;
  const env = (h: Host) => ({ STRONGSWAN_CONF: join(h.dir, 'strongswan.conf'), LC_ALL: 'C' });
  const swanctl = (h: Host, ...args: string[]) =>
    execa('swanctl', [...args, '--uri', h.uri], { env: env(h), reject: false, all: true, timeout: 30_000 });
  const log = (h: Host) =>
    existsSync(join(h.dir, 'charon.log')) ? readFileSync(join(h.dir, 'charon.log'), 'utf8') : '';
  let version = '';

  before(async function () {
    // The openssl plugin does the IKE proposal's AES-GCM and ECP-256; openssl makes the test's certificates.
    const missing = [
      CHARON,
      '/usr/sbin/swanctl',
      '/usr/lib/ipsec/plugins/libstrongswan-openssl.so',
      '/usr/bin/openssl',
    ].filter((f) => !existsSync(f));
    if (missing.length) {
      const why = `strongSwan is not installed (${missing.join(', ')} missing): apt-get install strongswan-charon strongswan-swanctl libstrongswan-standard-plugins openssl`;
      if (process.env.CI) throw new Error(why);
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    version = (await readStrongSwanVersion({ uri: `unix://${root}/nonexistent.vici`, charonPaths: [CHARON] })).version;
    await execa('ip', ['netns', 'add', a.netns]);
    await execa('ip', ['netns', 'add', b.netns]);
    await execa('ip', ['-n', a.netns, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0', 'netns', b.netns]);
    for (const h of hosts) {
      await execa('ip', ['-n', h.netns, 'addr', 'add', `${h.address}/24`, 'dev', 'up0']);
      await execa('ip', ['-n', h.netns, 'link', 'set', 'up0', 'up']);
      await execa('ip', ['-n', h.netns, 'link', 'set', 'lo', 'up']);
    }
  });

  after(async () => {
    for (const h of hosts) await stopCharon(h);
    for (const h of hosts) await execa('ip', ['netns', 'del', h.netns], { reject: false });
    rmSync(root, { recursive: true, force: true });
  });

  // A fresh pair of daemons for every test: nothing one test loads or negotiates leaks into the next.
  beforeEach(async () => {
    for (const h of hosts) await startCharon(h);
  });

  afterEach(async function () {
    for (const h of hosts) await stopCharon(h);
    if (this.currentTest?.state === 'failed')
      for (const h of hosts) console.log(`--- charon log of ${h.name}:\n${log(h)}`);
    for (const h of hosts) {
      // charon removes its policies when it stops; this is for a charon that was killed.
      await execa('ip', ['-n', h.netns, 'xfrm', 'policy', 'flush'], { reject: false });
      await execa('ip', ['-n', h.netns, 'xfrm', 'state', 'flush'], { reject: false });
    }
  });

  /** Host h's charon, on an emptied h.dir. */
  async function startCharon(h: Host): Promise<void> {
    rmSync(h.dir, { recursive: true, force: true });
    h.charon = await startTestCharon({
      name: h.name,
      netns: h.netns,
      confPath: join(h.dir, 'strongswan.conf'),
      strongswanConf: strongswanConf(h.dir),
      swanctlDir: h.dir,
      socket: join(h.dir, 'charon.vici'),
      env: env(h),
    });
  }

  async function stopCharon(h: Host): Promise<void> {
    const charon = h.charon;
    h.charon = undefined;
    await stopTestCharon(charon);
  }

  /** Renders host h's view of the pair, writes it as vfwire does, and loads it through swanctl. */
  async function load(
    h: Host,
    offload: SwanctlOffload,
    auth: (h: Host) => PeerAuth = () => ({ pskFile: '/unused/in/this/test.psk' }),
  ) {
    const peer = h === a ? b : a;
    const input: SwanctlInput = {
      localAddress: h.address,
      uplink: 'up0',
      offload,
      rekeyTime: 3600,
      peers: [{ name: peer.name, address: peer.address, auth: auth(h) }],
    };
    await writeSwanctlFiles(h.dir, renderSwanctlConf(input), renderSwanctlSecrets(input, new Map([[peer.name, PSK]])));
    const argv = loadAllArgv({ swanctlDir: h.dir, uri: h.uri });
    const res = await execa(argv[0]!, argv.slice(1), { env: env(h), reject: false, all: true, timeout: 30_000 });
    return {
      exitCode: res.exitCode,
      output: res.all
        .split('\n')
        .filter((l) => !/^plugin '.*': failed to load|^opening directory/.test(l))
        .join('\n'),
    };
  }

  /** Until `probe` holds: 15 s at most, polled every 100 ms. */
  const until = (what: string, probe: () => Promise<boolean> | boolean) =>
    waitFor(what, async () => ((await probe()) ? true : undefined), 15_000, 100);

  const established = async (h: Host) => /ESTABLISHED, IKEv2/.test((await swanctl(h, '--list-sas')).all);

  it('vfwire reads the version of the daemon it loads into, and of the installed charon', async () => {
    expect(await readStrongSwanVersion({ uri: a.uri })).to.deep.equal({ version, from: 'daemon' });
    expect(
      await readStrongSwanVersion({ uri: `unix://${root}/nonexistent.vici`, charonPaths: [CHARON] }),
    ).to.deep.equal({ version, from: 'charon' });
    expect(version).to.equal(parseStrongSwanVersion(log(a)));
  });

  it('hw_offload = packet: loaded where strongSwan >= 5.9.10, else refused by charon itself (so vfwire checks the version first)', async () => {
    const res = await load(b, 'packet');
    if (strongSwanSupportsPacketOffload(version)) {
      expect(res.exitCode, res.output).to.equal(0);
      return;
    }
    // 5.9.8 (Debian 12) knows no/yes/auto only, and discards the whole connection.
    expect(res.exitCode).to.not.equal(0);
    expect(res.output).to.match(
      /loading connection 'vfwire-hosta' failed: invalid value for: hw_offload, config discarded/,
    );
    expect(chooseOffload(version, 'packet')).to.have.property('refused').that.includes(`strongSwan ${version} cannot`);
  });

  it('the rendering chosen for this version loads, with trap policies for exactly the VXLAN traffic both ways', async () => {
    const choice = chooseOffload(version, strongSwanSupportsPacketOffload(version) ? 'packet' : 'crypto');
    if (!('offload' in choice)) throw new Error(choice.refused);
    for (const h of [b, a]) {
      const res = await load(h, choice.offload);
      expect(res.exitCode, res.output).to.equal(0);
      expect(res.output)
        .to.include(`loaded ike secret 'ike-vfwire-${h === a ? 'hostb' : 'hosta'}'`)
        .and.include('successfully loaded 1 connections, 0 unloaded');
    }
    // Per host: its VXLAN packets out (any port -> 4789) and the peer's in (any port -> 4789) need
    // ESP, plus the unused mirror of each child (source port 4789).
    for (const [h, peer] of [
      [a, b],
      [b, a],
    ] as const) {
      const pols = (await execa('ip', ['-n', h.netns, 'xfrm', 'policy', 'list'])).stdout.replace(/\s+/g, ' ');
      const sel = (src: Host, dst: Host, port: string, dir: string) =>
        new RegExp(
          `src ${src.address}/32 dst ${dst.address}/32 proto udp ${port} 4789 dir ${dir} priority \\d+ ptype main tmpl src 0\\.0\\.0\\.0 dst 0\\.0\\.0\\.0 proto esp reqid \\d+ mode transport`,
        );
      expect(pols)
        .to.match(sel(h, peer, 'dport', 'out'))
        .and.match(sel(peer, h, 'dport', 'in'));
      expect(pols)
        .to.match(sel(h, peer, 'sport', 'out'))
        .and.match(sel(peer, h, 'sport', 'in'));
      expect(pols.match(/ dir (out|in|fwd) /g)).to.have.length(4);
    }
    // Host A (the lower address) started the IKE_SA on its own; the veth cannot offload ESP, and
    // hw_offload = yes/packet forces offload, so the CHILD_SA fails closed instead of running in software.
    await until('the IKE_SA', () => established(a));
    await until(
      'the refused CHILD_SA',
      () =>
        /HW offload is not supported by device/.test(log(b)) &&
        /unable to install inbound and outbound IPsec SA \(SAD\) in kernel/.test(log(b)),
    );
    expect(log(b)).not.to.match(/received netlink error/);
    for (const h of hosts) expect(log(h)).not.to.include(PSK.toString()).and.not.include(PSK.toString('base64'));
  });

  for (const mode of ['psk', 'certificates'] as const) {
    it(`two charons, ${mode}: the IKE_SA comes up, each side picks the mirror child, only the kernel refuses the CHILD_SA (no ESP/AES-GCM here)`, async () => {
      let auth: ((h: Host) => PeerAuth) | undefined;
      if (mode === 'certificates') auth = await makeCertificates(join(root, 'pki'));
      // offload none: the SA goes to the kernel's own ESP, which is what is missing here.
      for (const h of [b, a]) expect((await load(h, 'none', auth)).exitCode).to.equal(0);
      await until('the IKE_SA on both hosts', async () => (await established(a)) && (await established(b)));
      const ikeA = (await swanctl(a, '--list-sas', '--ike', 'vfwire-hostb')).all;
      expect(ikeA)
        .to.match(/vfwire-hostb: #\d+, ESTABLISHED, IKEv2/)
        .and.match(/AES_GCM_16-128\/PRF_HMAC_SHA2_256\/ECP_256/);
      expect(ikeA).not.to.match(/INSTALLED/);
      expect(log(a)).to.include(
        mode === 'psk'
          ? "authentication of '198.18.77.2' with pre-shared key successful"
          : "authentication of '198.18.77.2' with ECDSA_WITH_SHA256_DER successful",
      );
      // Host A's -out is host B's -in: the responder matches it exactly (prio 5+5, not the 1+1 of narrowing).
      await until('the children to be tried', () =>
        /found matching child config "vfwire-hosta-in" with prio 10/.test(log(b)),
      );
      // An explicit initiate, as `vfwire ipsec up` does, reuses the IKE_SA and fails the same way.
      const names = swanctlNames('hostb');
      const init = await swanctl(a, '--initiate', '--ike', names.conn, '--child', names.out, '--timeout', '20');
      expect(init.exitCode).to.not.equal(0);
      expect(init.all)
        .to.include(`initiate failed: establishing CHILD_SA '${names.out}' failed`)
        .and.include('received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built');
      await until('host B to match the explicit initiate', () =>
        /found matching child config "vfwire-hosta-in" with prio 10[\s\S]*found matching child config "vfwire-hosta-in" with prio 10/.test(
          log(b),
        ),
      );
      // The kernel has no AES-GCM/ESP: adding the SA fails with ENOSYS, nothing else.
      expect(log(b)).to.match(
        /received netlink error: Function not implemented \(38\)\n.*unable to add SAD entry with SPI [0-9a-f]+ \(FAILED\)/,
      );
      expect(log(b)).to.include('unable to install inbound and outbound IPsec SA (SAD) in kernel');
      expect((await swanctl(b, '--list-sas')).all)
        .to.match(/ESTABLISHED/)
        .and.not.match(/INSTALLED/);
      for (const h of hosts)
        expect(log(h) + init.all)
          .not.to.include(PSK.toString())
          .and.not.include(PSK.toString('base64'));
    });
  }

  /** A CA and one ECDSA certificate per host with its underlay address as subjectAltName (its IKE identity). */
  async function makeCertificates(dir: string): Promise<(h: Host) => PeerAuth> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ca = { crt: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'];
    await execa('openssl', [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      ca.key,
      '-out',
      ca.crt,
      '-subj',
      '/O=vfwire test/CN=vfwire test CA',
    ]);
    for (const h of hosts) {
      await execa('openssl', [
        'req',
        '-x509',
        ...ec,
        '-keyout',
        join(dir, `${h.name}.key`),
        '-out',
        join(dir, `${h.name}.crt`),
        '-subj',
        `/O=vfwire test/CN=${h.name}`,
        '-addext',
        `subjectAltName=IP:${h.address}`,
        '-addext',
        'basicConstraints=critical,CA:FALSE',
        '-CA',
        ca.crt,
        '-CAkey',
        ca.key,
      ]);
    }
    return (h) => ({ cert: join(dir, `${h.name}.crt`), key: join(dir, `${h.name}.key`), ca: ca.crt });
  }
});
