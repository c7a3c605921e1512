import { expect } from 'chai';
import { ResourceError, ValidationError } from '../../src/errors.js';
import { planHostSetup, renderHostSetup, type HostSetupInput } from '../../src/plan/host-setup.js';
import type { HostState } from '../../src/host/host-state.js';
import { formatCommandWithInput as show, type Command, type Step } from '../../src/exec/step.js';
import { expectGolden } from '../helpers/golden.js';

const reps = (base: string, n: number) => Array.from({ length: n }, (_, i) => `${base}r${i}`);
const PF0 = { name: 'enp3s0f0np0', pci: '0000:03:00.0', numVfs: 4, reps: reps('enp3s0f0', 4) };
const PF1 = { name: 'enp3s0f1np1', pci: '0000:03:00.1', numVfs: 4, reps: reps('enp3s0f1', 4) };

function input(address: string, failover: boolean): HostSetupInput {
  return {
    pfs: failover ? [PF0, PF1] : [PF0],
    underlay: { interface: failover ? 'bond0' : PF0.name, address, prefixLength: 24, mtu: 9216 },
    repMtu: 9000,
    sysfsRoot: '/sys',
    ...(failover ? { failover: { mode: 'active-backup' as const } } : {}),
  };
}

const text = (steps: Step[]) =>
  '# do\n' +
  steps.map((s) => show(s.do) + '\n').join('') +
  '# undo, in reverse order\n' +
  [...steps]
    .reverse()
    .flatMap((s) => (s.undo ? [show(s.undo) + '\n'] : []))
    .join('');

describe('host setup plans (plan/host-setup)', () => {
  it('pf-switch: no bond; the underlay on underlay.interface, or left on the other PF where the watch moved it', () => {
    const pfSwitch: HostSetupInput = {
      ...input('192.168.80.2', false),
      pfs: [PF0, PF1],
      failover: { mode: 'pf-switch' },
    };
    const fresh = renderHostSetup(pfSwitch).map((s) => show(s.do));
    expect(fresh.filter((c) => / addr /.test(c))).to.deep.equal(['ip addr add 192.168.80.2/24 dev enp3s0f0np0']);
    expect(fresh.filter((c) => /bond|master/.test(c))).to.deep.equal([]);
    expect(fresh).to.include('ip link set dev enp3s0f1np1 mtu 9216 up');
    const moved: HostState = {
      pfs: { [PF0.name]: { addresses: [] }, [PF1.name]: { addresses: ['192.168.80.2/24'] } },
      reps: {},
    };
    expect(
      planHostSetup(pfSwitch, moved)
        .map((s) => show(s.do))
        .filter((c) => / addr /.test(c)),
      'a second run after a move',
    ).to.deep.equal([]);
    expect(() => planHostSetup({ ...pfSwitch, pfs: [PF0] }, { pfs: {}, reps: {} })).to.throw(
      /pf-switch moves the underlay between the NIC's two PFs; 1 given/,
    );
  });

  it("host A without failover: the lab notes' per-PF steps (golden)", () => {
    const steps = renderHostSetup(input('192.168.80.2', false));
    expectGolden('failover/host-a-plain.txt', text(steps));
    expect(steps.slice(0, 8).map((s) => show(s.do))).to.deep.equal([
      'tee /sys/class/net/enp3s0f0np0/device/sriov_numvfs <<< 0',
      'devlink dev param set pci/0000:03:00.0 name flow_steering_mode value dmfs cmode runtime',
      'devlink dev eswitch set pci/0000:03:00.0 mode switchdev',
      // No host driver for new VFs: libvirt binds them to vfio-pci through driver_override.
      'tee /sys/class/net/enp3s0f0np0/device/sriov_drivers_autoprobe <<< 0',
      'tee /sys/class/net/enp3s0f0np0/device/sriov_numvfs <<< 4',
      'ip addr add 192.168.80.2/24 dev enp3s0f0np0',
      'ip link set dev enp3s0f0np0 mtu 9216 up',
      'ip link set dev enp3s0f0r0 mtu 9000 up',
    ]);
  });

  it('host B without failover differs only in its address (golden)', () => {
    const a = renderHostSetup(input('192.168.80.2', false)).map((s) => show(s.do));
    const b = renderHostSetup(input('192.168.80.3', false)).map((s) => show(s.do));
    expectGolden('failover/host-b-plain.txt', text(renderHostSetup(input('192.168.80.3', false))));
    expect(b.filter((l, i) => l !== a[i])).to.deep.equal(['ip addr add 192.168.80.3/24 dev enp3s0f0np0']);
  });

  it('host A with failover: VF LAG in the documented order (golden)', () => {
    const steps = renderHostSetup(input('192.168.80.2', true));
    expectGolden('failover/host-a-failover.txt', text(steps));
    const at = (re: RegExp) => steps.findIndex((s) => re.test(show(s.do)));
    const last = (re: RegExp) => steps.length - 1 - [...steps].reverse().findIndex((s) => re.test(show(s.do)));
    // Both PFs in switchdev before the bond; the bond before the address; VFs after all of it.
    expect(last(/eswitch set .* mode switchdev/)).to.be.lessThan(
      at(/ip link add bond0 type bond mode active-backup miimon 100/),
    );
    expect(at(/ip link set dev enp3s0f0np0 down/)).to.be.lessThan(at(/ip link set dev enp3s0f0np0 master bond0/));
    expect(last(/master bond0/)).to.be.lessThan(at(/ip addr add 192\.168\.80\.2\/24 dev bond0/));
    expect(at(/ip link set dev bond0 mtu 9216 up/)).to.be.lessThan(at(/sriov_numvfs <<< 4/));
    expect(steps.filter((s) => /sriov_numvfs <<< 4/.test(show(s.do)))).to.have.length(2);
    expect(steps.map((s) => show(s.do)).filter((l) => /dev enp3s0f[01]np[01] mtu/.test(l))).to.deep.equal(
      [],
      "the bond sets its ports' MTU",
    );
  });

  it('host B with failover differs only in its address (golden)', () => {
    const a = renderHostSetup(input('192.168.80.2', true)).map((s) => show(s.do));
    const b = renderHostSetup(input('192.168.80.3', true));
    expectGolden('failover/host-b-failover.txt', text(b));
    expect(b.map((s) => show(s.do)).filter((l, i) => l !== a[i])).to.deep.equal([
      'ip addr add 192.168.80.3/24 dev bond0',
    ]);
  });

  for (const failover of [false, true]) {
    const mode = failover ? 'with failover' : 'without failover';

    it(`${mode}: a second run on the result changes nothing, and undoing in reverse restores a fresh boot`, () => {
      const want = input('192.168.80.2', failover);
      const host = new HostModel(want);
      const boot = host.snapshot();
      const steps = renderHostSetup(want);
      host.run(steps.map((s) => s.do));
      expect(planHostSetup(want, host.read())).to.deep.equal([]);
      host.run([...steps].reverse().flatMap((s) => (s.undo ? [s.undo] : [])));
      expect(host.snapshot()).to.deep.equal(boot);
    });

    it(`${mode}: from a host left in legacy mode with 8 VFs and smfs, only what differs, in an order the kernel accepts`, () => {
      const want = input('192.168.80.2', failover);
      const host = new HostModel(want);
      host.pfs.forEach((p) => Object.assign(p, { numVfs: 8, fsm: 'smfs' }));
      const before = host.snapshot();
      const steps = planHostSetup(want, host.read());
      expect(show(steps[0]!.do)).to.equal('tee /sys/class/net/enp3s0f0np0/device/sriov_numvfs <<< 0');
      expect(steps[0]!.undo!.stdin).to.equal('8\n');
      host.run(steps.map((s) => s.do));
      expect(planHostSetup(want, host.read())).to.deep.equal([]);
      host.run([...steps].reverse().flatMap((s) => (s.undo ? [s.undo] : [])));
      expect(host.snapshot()).to.deep.equal(before);
    });
  }

  it('a set-up host whose representors went down gets only the representor steps', () => {
    const want = input('192.168.80.2', false);
    const host = new HostModel(want);
    host.run(renderHostSetup(want).map((s) => s.do));
    host.links.get('enp3s0f0r2')!.up = false;
    expect(planHostSetup(want, host.read()).map((s) => show(s.do))).to.deep.equal([
      'ip link set dev enp3s0f0r2 mtu 9000 up',
    ]);
  });

  it('a different VF count goes through 0 (the kernel refuses N -> M), and the representors come back', () => {
    const want = input('192.168.80.2', false);
    const host = new HostModel(want);
    host.run(renderHostSetup(want).map((s) => s.do));
    const more = { ...want, pfs: [{ ...PF0, numVfs: 6, reps: reps('enp3s0f0', 6) }] };
    const steps = planHostSetup(more, host.read());
    expect(steps.map((s) => show(s.do))).to.deep.equal([
      'tee /sys/class/net/enp3s0f0np0/device/sriov_numvfs <<< 0',
      'tee /sys/class/net/enp3s0f0np0/device/sriov_numvfs <<< 6',
      ...reps('enp3s0f0', 6).map((r) => `ip link set dev ${r} mtu 9000 up`),
    ]);
    host.run(steps.map((s) => s.do));
    expect(planHostSetup(more, host.read())).to.deep.equal([]);
  });

  it('turning failover on for a plain host moves the underlay address from the PF to the bond', () => {
    const host = new HostModel(input('192.168.80.2', true));
    host.run(renderHostSetup(input('192.168.80.2', false)).map((s) => s.do));
    const steps = planHostSetup(input('192.168.80.2', true), host.read());
    expect(steps.map((s) => show(s.do))).to.include.members([
      'ip addr del 192.168.80.2/24 dev enp3s0f0np0',
      'ip link set dev enp3s0f0np0 down',
      'ip link set dev enp3s0f0np0 master bond0',
      'ip addr add 192.168.80.2/24 dev bond0',
    ]);
    expect(steps.findIndex((s) => show(s.do) === 'tee /sys/class/net/enp3s0f0np0/device/sriov_numvfs <<< 0')).to.equal(
      0,
      'VFs off before the LAG forms',
    );
    host.run(steps.map((s) => s.do));
    expect(planHostSetup(input('192.168.80.2', true), host.read())).to.deep.equal([]);
  });

  it('refuses mode changes while IPsec is offloaded, naming what and how to proceed', () => {
    const want = input('192.168.80.2', false);
    const host = new HostModel(want);
    const state = { ...host.read(), ipsecActive: true };
    expect(() => planHostSetup(want, state)).to.throw(
      ResourceError,
      /IPsec offload is active, and enp3s0f0np0: eswitch mode legacy -> switchdev.*run vfwire ipsec down, then host setup, then vfwire ipsec up/,
    );
    host.run(renderHostSetup(want).map((s) => s.do));
    host.links.get('enp3s0f0r0')!.up = false;
    expect(planHostSetup(want, { ...host.read(), ipsecActive: true }).map((s) => s.kind)).to.deep.equal(['rep-link']);
  });

  it('refuses inputs it cannot build', () => {
    expect(() => renderHostSetup({ ...input('192.168.80.2', true), pfs: [PF0] })).to.throw(
      ValidationError,
      /bonds the NIC's two PFs; 1 given/,
    );
    expect(() =>
      renderHostSetup({
        ...input('192.168.80.2', false),
        underlay: { ...input('192.168.80.2', false).underlay, interface: 'bond0' },
      }),
    ).to.throw(ValidationError, /not one of the PFs/);
    expect(() => renderHostSetup({ ...input('192.168.80.2', false), pfs: [{ ...PF0, reps: ['only-one'] }] })).to.throw(
      ValidationError,
      /4 VFs but 1 representor names/,
    );
    expect(
      renderHostSetup({ ...input('192.168.80.2', false), pfs: [{ ...PF0, reps: [] }] }).some(
        (s) => s.kind === 'rep-link',
      ),
    ).to.equal(false);
    const host = new HostModel(input('192.168.80.2', true));
    const state: HostState = {
      ...host.read(),
      bond: { mode: 'balance-rr', miimon: 100, addresses: [], mtu: 1500, up: false },
    };
    expect(() => planHostSetup(input('192.168.80.2', true), state)).to.throw(
      ValidationError,
      /bond0 exists in mode balance-rr; failover needs active-backup/,
    );
    const bonded = new HostModel(input('192.168.80.2', true));
    bonded.run(renderHostSetup(input('192.168.80.2', true)).map((s) => s.do));
    expect(() => planHostSetup(input('192.168.80.2', false), bonded.read())).to.throw(
      ValidationError,
      /enp3s0f0np0 is a port of bond0, but failover is off: remove the bond \(ip link del bond0\)/,
    );
  });

  it('runs in a netns when told, and writes sysfs under the given root', () => {
    const steps = renderHostSetup({
      ...input('198.18.0.1', false),
      netns: 'vfwsim-a',
      sysfsRoot: '/run/vfwire-sim/a/sys/',
    });
    expect(steps[0]!.do.argv).to.deep.equal(['tee', '/run/vfwire-sim/a/sys/class/net/enp3s0f0np0/device/sriov_numvfs']);
    expect(
      steps.filter((s) => s.do.argv[0] === 'ip').every((s) => s.do.argv.slice(1, 3).join(' ') === '-n vfwsim-a'),
    ).to.equal(true);
  });
});

// A host as far as setup touches it, strict like the kernel and mlx5: sriov_numvfs changes only
// via 0, the eswitch mode only without VFs, smfs not in switchdev, a port is enslaved down and
// only while no PF has VFs (VF LAG activation), adding what exists or deleting what does not fails.
class HostModel {
  pfs: {
    name: string;
    pci: string;
    numVfs: number;
    autoprobe: number;
    eswitch: 'legacy' | 'switchdev';
    fsm: string;
    addrs: string[];
    mtu: number;
    up: boolean;
    master: string | null;
    mtuBefore?: number;
  }[];
  links = new Map<string, { mtu: number; up: boolean }>();
  bond: { name: string; mode: string; miimon: number; addrs: string[]; mtu: number; up: boolean } | null = null;

  constructor(want: HostSetupInput) {
    this.pfs = want.pfs.map((p) => ({
      name: p.name,
      pci: p.pci,
      numVfs: 0,
      autoprobe: 1,
      eswitch: 'legacy',
      fsm: 'dmfs',
      addrs: [],
      mtu: 1500,
      up: false,
      master: null,
    }));
  }

  read(): HostState {
    return {
      pfs: Object.fromEntries(
        this.pfs.map((p) => [
          p.name,
          {
            numVfs: p.numVfs,
            driversAutoprobe: p.autoprobe,
            eswitchMode: p.eswitch,
            flowSteeringMode: p.fsm,
            addresses: [...p.addrs],
            mtu: p.mtu,
            up: p.up,
            master: p.master,
          },
        ]),
      ),
      reps: Object.fromEntries([...this.links].map(([k, v]) => [k, { ...v }])),
      bond: this.bond && {
        mode: this.bond.mode,
        miimon: this.bond.miimon,
        addresses: [...this.bond.addrs],
        mtu: this.bond.mtu,
        up: this.bond.up,
      },
    };
  }

  snapshot(): unknown {
    return JSON.parse(
      JSON.stringify({
        pfs: this.pfs.map((p) => ({ ...p, mtuBefore: undefined })),
        links: [...this.links],
        bond: this.bond,
      }),
    );
  }

  run(cmds: Command[]): void {
    for (const c of cmds) this.one(c);
  }

  // ... and on release closes it and puts its MTU back (__bond_release_one).
  private release(p: HostModel['pfs'][number]): void {
    Object.assign(p, { master: null, up: false, mtu: p.mtuBefore ?? p.mtu, mtuBefore: undefined });
  }

  private pf(name: string) {
    return this.pfs.find((p) => p.name === name || `pci/${p.pci}` === name);
  }

  private one(c: Command): void {
    const cmd = c.argv.join(' ');
    const fail = (why: string) => {
      throw new Error(`${cmd}: ${why}`);
    };
    let m: RegExpExecArray | null;
    if ((m = /^tee \/sys\/class\/net\/(\S+)\/device\/sriov_drivers_autoprobe$/.exec(cmd))) {
      // drivers/pci/iov.c sriov_drivers_autoprobe_store: 0 or 1 (kstrtobool).
      if (!/^[01]\n$/.test(c.stdin ?? '')) fail('EINVAL');
      this.pf(m[1]!)!.autoprobe = Number(c.stdin);
    } else if ((m = /^tee \/sys\/class\/net\/(\S+)\/device\/sriov_numvfs$/.exec(cmd))) {
      const pf = this.pf(m[1]!)!;
      const n = Number(c.stdin);
      if (pf.numVfs > 0 && n > 0 && n !== pf.numVfs) fail('EBUSY: VFs already enabled');
      for (const r of reps(pf.name.replace(/np\d+$/, ''), pf.numVfs)) this.links.delete(r);
      pf.numVfs = n;
      if (pf.eswitch === 'switchdev')
        for (const r of reps(pf.name.replace(/np\d+$/, ''), n)) this.links.set(r, { mtu: 1500, up: false });
    } else if ((m = /^devlink dev param set (\S+) name flow_steering_mode value (\S+) cmode runtime$/.exec(cmd))) {
      const pf = this.pf(m[1]!)!;
      if (m[2] === 'smfs' && pf.eswitch === 'switchdev')
        fail('Software managed steering is not supported when eswitch offloads enabled');
      pf.fsm = m[2]!;
    } else if ((m = /^devlink dev eswitch set (\S+) mode (\S+)$/.exec(cmd))) {
      const pf = this.pf(m[1]!)!;
      if (pf.numVfs > 0) fail("Can't change mode while VFs are enabled");
      pf.eswitch = m[2] as 'legacy' | 'switchdev';
    } else if ((m = /^ip link add (\S+) type bond mode (\S+) miimon (\d+)$/.exec(cmd))) {
      if (this.bond) fail('exists');
      this.bond = { name: m[1]!, mode: m[2]!, miimon: Number(m[3]), addrs: [], mtu: 1500, up: false };
    } else if ((m = /^ip link del (\S+)$/.exec(cmd))) {
      if (this.bond?.name !== m[1]) fail('absent');
      for (const p of this.pfs) if (p.master === m[1]) this.release(p);
      this.bond = null;
    } else if ((m = /^ip link set dev (\S+) type bond miimon (\d+)$/.exec(cmd))) {
      this.bond!.miimon = Number(m[2]);
    } else if ((m = /^ip link set dev (\S+) master (\S+)$/.exec(cmd))) {
      const pf = this.pf(m[1]!)!;
      if (this.bond?.name !== m[2]) fail('no such bond');
      if (pf.up) fail('enslaved while up');
      if (this.pfs.some((p) => p.numVfs > 0)) fail('VF LAG activation with VFs present');
      // bonding opens the port and gives it the bond's MTU (bond_enslave) ...
      Object.assign(pf, { master: m[2], up: true, mtuBefore: pf.mtu, mtu: this.bond!.mtu });
    } else if ((m = /^ip link set dev (\S+) nomaster$/.exec(cmd))) {
      this.release(this.pf(m[1]!)!);
    } else if ((m = /^ip link set dev (\S+)(?: mtu (\d+))? (up|down)$/.exec(cmd))) {
      const [, dev, mtu, state] = m;
      const target = this.bond?.name === dev ? this.bond : (this.pf(dev!) ?? this.links.get(dev!));
      if (!target) fail('no such device');
      if (mtu) target!.mtu = Number(mtu);
      target!.up = state === 'up';
      if (this.bond?.name === dev && mtu) for (const p of this.pfs.filter((x) => x.master === dev)) p.mtu = Number(mtu);
    } else if ((m = /^ip addr (add|del) (\S+) dev (\S+)$/.exec(cmd))) {
      const [, verb, cidr, dev] = m;
      const target = this.bond?.name === dev ? this.bond : this.pf(dev!);
      if (!target) fail('no such device');
      const has = target!.addrs.includes(cidr!);
      if (verb === 'add' && has) fail('exists');
      if (verb === 'del' && !has) fail('absent');
      target!.addrs = verb === 'add' ? [...target!.addrs, cidr!] : target!.addrs.filter((a) => a !== cidr);
    } else {
      fail('the model does not know this command');
    }
  }
}
