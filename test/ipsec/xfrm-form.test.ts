import { expect } from 'chai';
import { parseIproute2Version, parseKernelRelease } from '../../src/host/versions.js';
import { xfrmForm } from '../../src/ipsec/xfrm-form.js';

describe('xfrm form per kernel and iproute2', () => {
  it('reads the versions as the kernel and ip print them', () => {
    expect(parseKernelRelease('6.12.57+deb12-amd64')).to.deep.equal([6, 12]);
    expect(parseKernelRelease('6.1.0-41-amd64\n')).to.deep.equal([6, 1]);
    expect(parseIproute2Version('ip utility, iproute2-6.15.0, libbpf 1.1.2')).to.deep.equal([6, 15]);
    expect(parseIproute2Version('ip utility, iproute2-6.1.0, libbpf 1.1.0')).to.deep.equal([6, 1]);
    expect(parseIproute2Version('ip utility, iproute2-ss161212')).to.deep.equal([0, 0]);
    expect(() => parseIproute2Version('BusyBox v1.35')).to.throw(/cannot read an iproute2 version/);
  });

  it('names the SA direction and gives output SAs window 0 only where kernel >= 6.10 and iproute2 >= 6.11', () => {
    const form = (k: [number, number], i: [number, number]) =>
      xfrmForm({ kernel: k, iproute2: i, switchdev: false }, 'none');
    expect(form([6, 12], [6, 15])).to.deep.equal({ offload: 'none', saDir: true, outReplayWindow: 0 });
    expect(form([6, 10], [6, 11])).to.include({ saDir: true, outReplayWindow: 0 });
    // iproute2 6.10 knows no SA direction and refuses ESN without a window.
    expect(form([6, 12], [6, 10])).to.include({ saDir: false, outReplayWindow: 64 });
    // A 6.1 kernel refuses an ESN window of 0 whatever ip sends.
    expect(form([6, 1], [6, 15])).to.include({ saDir: false, outReplayWindow: 64 });
  });

  it('refuses packet offload before anything runs where the kernel or iproute2 cannot do it, in one line with the fix', () => {
    const packet =
      (k: [number, number], i: [number, number], switchdev = true) =>
      () =>
        xfrmForm({ kernel: k, iproute2: i, switchdev }, 'packet');
    expect(packet([6, 1], [6, 15])).to.throw(
      /^ipsec\.offload: kernel 6\.1 has no IPsec packet offload \(needs 6\.2\): .*ipsec\.offload: crypto or none$/,
    );
    expect(packet([6, 5], [6, 15])).to.throw(/kernel 6\.5: mlx5 IPsec packet offload in switchdev mode needs 6\.6/);
    expect(packet([6, 5], [6, 15], false)).not.to.throw();
    expect(packet([6, 12], [6, 1])).to.throw(
      /iproute2 6\.1 cannot say 'offload packet' \(needs 6\.2\): apt-get install -t bookworm-backports iproute2/,
    );
    expect(xfrmForm({ kernel: [6, 1], iproute2: [6, 1], switchdev: true }, 'crypto')).to.include({ offload: 'crypto' });
  });
});
