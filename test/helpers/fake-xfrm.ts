// What this machine lacks for static IPsec: a kernel that installs ESP SAs (it has no ESP at all)
// and a wire that carries ESP between two hosts. FakeXfrm stands in for both, and only for
// those: it takes the very `ip` commands vfwire runs (by netns: one table per host), keeps each
// host's SAs and policies, and carries a datagram the way the kernel would: out through the
// newest outbound SA of the pair, counted on the peer's inbound SA of that SPI, dropped when the
// peer has none. Everything else in the runner path is vfwire's own code.

import { NotFoundError, VfwireError } from '../../src/errors.js';
import { CommandError, type Runner, type RunResult } from '../../src/exec/runner.js';
import type { Command } from '../../src/exec/step.js';

interface FakeSa {
  dir: 'out' | 'in';
  src: string;
  dst: string;
  spi: number;
  packets: number;
  /** Install order: the kernel sends with the newest outbound SA. */
  seq: number;
}

interface FakeHost {
  address: string;
  sas: FakeSa[];
  policies: Set<string>;
  /** Every outbound SA ever added, as `spi`: a repeat would be a reused nonce space. */
  outAdds: number[];
  inAdds: number[];
}

export class FakeXfrm {
  readonly hosts = new Map<string, FakeHost>();
  /** Datagrams that reached no SA on the peer (the kernel's XfrmInNoStates). */
  dropped = 0;
  /** Set to make the wire drop everything (a link still down). */
  wireDown = false;
  /** Fail the next `state add` with this SPI (a NIC that refuses). */
  failAdd?: number;
  /** Every `state get` times out (a kernel or runner that does not answer): neither there nor gone. */
  getsTimeOut = false;
  private seq = 0;

  addHost(netns: string, address: string): void {
    this.hosts.set(netns, { address, sas: [], policies: new Set(), outAdds: [], inAdds: [] });
  }

  /** What mlx5 does to the SAs and policies of a netdev that goes down. */
  flush(netns: string): void {
    const h = this.host(netns);
    h.sas = [];
    h.policies.clear();
  }

  /** One datagram from the host in `netns` to its peer, as the VMs' traffic or a kick. */
  send(netns: string): boolean {
    const from = this.host(netns);
    const out = from.sas.filter((s) => s.dir === 'out').sort((x, y) => y.seq - x.seq)[0];
    if (!out || !from.policies.has('out') || this.wireDown) return false;
    const to = [...this.hosts.values()].find((h) => h.address === out.dst)!;
    const inbound = to.sas.find((s) => s.dir === 'in' && s.spi === out.spi && s.src === out.src);
    out.packets++;
    if (!inbound || !to.policies.has('in')) {
      this.dropped++;
      return false;
    }
    inbound.packets++;
    return true;
  }

  /** The epoch-independent view: which SPIs a host has, by direction. */
  spis(netns: string, dir: 'out' | 'in'): number[] {
    return this.host(netns)
      .sas.filter((s) => s.dir === dir)
      .map((s) => s.spi);
  }

  outAdds(netns: string): number[] {
    return this.host(netns).outAdds;
  }

  inAdds(netns: string): number[] {
    return this.host(netns).inAdds;
  }

  runner(): Runner {
    return { run: (cmd) => this.run(cmd) };
  }

  private async run(cmd: Command): Promise<RunResult> {
    const a = cmd.argv;
    // The form probe (host/versions.ts): the fake plays a current iproute2.
    if (a[0] === 'ip' && a[1] === '-V') return ok('ip utility, iproute2-6.15.0, libbpf 1.1.2\n');
    if (a[0] === 'ip' && a[1] === 'netns' && a[2] === 'exec') {
      // The kick: `ip netns exec NS node kick-main.js LOCAL PEER`.
      this.send(a[3]!);
      return ok();
    }
    if (a[0] !== 'ip' || a[1] !== '-n') throw new VfwireError(`fake xfrm: unexpected command ${a.join(' ')}`);
    const ns = a[2]!;
    let rest = a.slice(3);
    if (rest[0] === '-batch') rest = cmd.stdin!.trim().split(/\s+/);
    const stats = rest[0] === '-s';
    if (stats) rest = rest.slice(1);
    const [obj, kind, verb, ...args] = rest;
    if (obj !== 'xfrm') throw new VfwireError(`fake xfrm: unexpected command ${a.join(' ')}`);
    const h = this.host(ns);
    const arg = (name: string) => args[args.indexOf(name) + 1]!;
    if (kind === 'policy') {
      const dir = arg('dir');
      if (verb === 'add' && h.policies.has(dir)) throw new VfwireError('RTNETLINK answers: File exists');
      if (verb === 'add' || verb === 'update') {
        h.policies.add(dir);
      } else if (verb === 'get') {
        if (!h.policies.has(dir)) throw new NotFoundError('RTNETLINK answers: No such file or directory');
      } else if (verb === 'delete') {
        if (!h.policies.delete(dir)) throw new NotFoundError('RTNETLINK answers: No such file or directory');
      }
      return ok();
    }
    if (verb === 'get' && this.getsTimeOut) throw new CommandError(`${a.join(' ')}: timed out after 10000 ms`);
    const spi = Number(arg('spi'));
    const i = h.sas.findIndex((s) => s.spi === spi && s.src === arg('src') && s.dst === arg('dst'));
    if (verb === 'add') {
      if (this.failAdd === spi) {
        this.failAdd = undefined;
        throw new VfwireError('RTNETLINK answers: Invalid argument');
      }
      if (i >= 0) throw new VfwireError('RTNETLINK answers: File exists');
      const dir = arg('dir') as 'out' | 'in';
      h.sas.push({ dir, src: arg('src'), dst: arg('dst'), spi, packets: 0, seq: ++this.seq });
      (dir === 'out' ? h.outAdds : h.inAdds).push(spi);
      return ok();
    }
    // As ExecRunner classifies it: the kernel's ESRCH for a missing SA is absence, for get too.
    if (i < 0) throw new NotFoundError('RTNETLINK answers: No such process');
    if (verb === 'delete') {
      h.sas.splice(i, 1);
      return ok();
    }
    const sa = h.sas[i]!;
    return ok(
      stats
        ? `src ${sa.src} dst ${sa.dst}\n\tlifetime current:\n\t  ${sa.packets * 100}(bytes), ${sa.packets}(packets)\n\t  add 2026-11-26 16:00:00 use -\n`
        : '',
    );
  }

  private host(netns: string): FakeHost {
    const h = this.hosts.get(netns);
    if (!h) throw new VfwireError(`fake xfrm: no host ${netns}`);
    return h;
  }
}

function ok(stdout = ''): RunResult {
  return { stdout, stderr: '' };
}
