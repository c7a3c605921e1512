// The OVS overlay's host state: planned from what ovs-vsctl reads (pure cases), and host setup's
// OVS part run against real ovsdb-server and ovs-vswitchd started by it in a netns of the test's.
// This machine's kernel has no openvswitch module: the daemons and their database run, the
// datapath does not (the kernel lab proves that part with packets: ovs-*.lab.ts).

import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../../src/errors.js';
import { applySteps } from '../../src/exec/apply.js';
import { overlayFor } from '../../src/overlay/overlay.js';
import { planOvsBridge, type OvsBridgeState } from '../../src/overlay/ovs/host-bridge.js';
import { planOvsStart, stopOvsDaemons } from '../../src/overlay/ovs/daemons.js';
import type { OvsHost } from '../../src/overlay/ovs/model.js';
import { config } from '../helpers/inputs.js';
import { runner } from '../helpers/sim.js';

const HOST: OvsHost = { bridge: 'vfwovs', runDir: '/run/o', underlayAddress: '192.168.80.2' };
const TUNNEL = { dst_port: '4789', key: 'flow', local_ip: '192.168.80.2', remote_ip: 'flow' };
const made = (over: Partial<OvsBridgeState> = {}): OvsBridgeState => ({
  otherConfig: { 'hw-offload': 'true', 'tc-policy': 'skip_sw' },
  bridge: { failMode: 'secure', datapathType: '' },
  tunnel: { type: 'vxlan', options: TUNNEL, bridge: 'vfwovs' },
  ...over,
});
const kinds = (steps: { kind: string }[]) => steps.map((s) => s.kind);

describe('OVS host state, planned', () => {
  it('a real host turns offload on with its tc-policy in one transaction, once; a bridge as made plans nothing', () => {
    const steps = planOvsBridge(HOST, { tcPolicy: 'skip_sw' }, made({ otherConfig: {} }));
    expect(kinds(steps)).to.deep.equal(['ovs-hw-offload']);
    expect(steps[0]!.do.argv.slice(3)).to.deep.equal([
      'set',
      'Open_vSwitch',
      '.',
      'other_config:tc-policy=skip_sw',
      'other_config:hw-offload=true',
    ]);
    expect(planOvsBridge(HOST, { tcPolicy: 'skip_sw' }, made())).to.deep.equal([]);
    // The sim never offloads, whatever the database says.
    expect(planOvsBridge(HOST, undefined, made({ otherConfig: {} }))).to.deep.equal([]);
  });

  it('refuses a tc-policy OVS already read, and a bridge on the userspace datapath, naming the fix', () => {
    expect(() =>
      planOvsBridge(HOST, { tcPolicy: 'skip_sw' }, made({ otherConfig: { 'hw-offload': 'true' } })),
    ).to.throw(
      ValidationError,
      /OVS offloads with tc-policy none, the config says skip_sw; .* restart openvswitch-switch, then host setup again$/,
    );
    expect(() =>
      planOvsBridge(HOST, undefined, made({ bridge: { failMode: 'secure', datapathType: 'netdev' } })),
    ).to.throw(ValidationError, /datapath_type netdev; .*ovs-vsctl del-br vfwovs/);
  });

  it('puts back what differs: fail mode, the tunnel port options (undo restores the old), a port on another bridge refused', () => {
    const steps = planOvsBridge(
      HOST,
      undefined,
      made({
        bridge: { failMode: 'standalone', datapathType: 'system' },
        tunnel: { type: 'vxlan', options: { ...TUNNEL, remote_ip: '192.168.80.9' }, bridge: 'vfwovs' },
      }),
    );
    expect(kinds(steps)).to.deep.equal(['ovs-fail-mode', 'ovs-tunnel-options']);
    expect(steps[0]!.undo!.argv.slice(3)).to.deep.equal(['set-fail-mode', 'vfwovs', 'standalone']);
    expect(steps[1]!.undo!.argv).to.include('options:remote_ip=192.168.80.9');
    expect(() =>
      planOvsBridge(HOST, undefined, made({ tunnel: { type: 'vxlan', options: TUNNEL, bridge: 'br-int' } })),
    ).to.throw(
      ValidationError,
      /vfwtun is on bridge br-int, not vfwovs; remove it \(ovs-vsctl del-port br-int vfwtun\)/,
    );
  });

  it('on a systemd host leaves the daemons to openvswitch-switch', async () => {
    const err = await planOvsStart(
      HOST,
      { dbFile: '/x/conf.db', logDir: '/x' },
      { db: true, vswitchd: false },
      true,
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.equal(
      'host setup: Open vSwitch is not answering (ovs-vswitchd); start it (systemctl start openvswitch-switch) and run host setup again',
    );
  });
});

describe('OVS host setup against real daemons', function () {
  this.timeout(60_000);
  const ns = `vfwt-ovsh-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'vfwt-ovsh-'));
  const cfg = config(`
backend: sim
netns: ${ns}
log_dir: ${dir}/log
underlay: { interface: u0, address: 198.18.70.1 }
pfs: [{ name: u0 }]
peers: [{ name: b, address: 198.18.70.2 }]
overlay: ovs
ovs: { run_dir: ${dir}/run, db_file: ${dir}/db/conf.db }
`);
  const moduleHere = existsSync('/sys/module/openvswitch') || /openvswitch/.test(safeRead('/proc/modules'));

  before(async () => {
    await runner.run({ argv: ['ip', 'netns', 'add', ns] });
    await runner.run({ argv: ['mkdir', '-p', `${dir}/log`] });
  });

  after(async () => {
    await stopOvsDaemons(`${dir}/run`, runner);
    await runner.run({ argv: ['ip', 'netns', 'del', ns] }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts ovsdb-server and ovs-vswitchd where there is no systemd, makes the bridge and its VXLAN port; a second run plans nothing', async function () {
    if (existsSync('/run/systemd/system')) this.skip();
    const overlay = overlayFor(cfg);
    const first = await overlay.hostSteps(runner);
    expect(kinds(first)).to.deep.equal([
      'ovs-dirs',
      'ovs-db-create',
      'ovsdb-server',
      'ovs-db-init',
      'ovs-module',
      'ovs-vswitchd',
      'ovs-bridge',
      'ovs-tunnel',
    ]);
    // Without the module here, modprobe would fail; ovs-vswitchd runs without a datapath.
    await applySteps(
      first.filter((s) => moduleHere || s.kind !== 'ovs-module'),
      runner,
    );
    expect(kinds(await overlay.hostSteps(runner))).to.deep.equal([]);
    const ports = await runner.run({ argv: ['ovs-vsctl', `--db=unix:${dir}/run/db.sock`, 'list-ports', 'vfwovs'] });
    expect(ports.stdout.trim()).to.equal('vfwtun');
    const failMode = await runner.run({
      argv: ['ovs-vsctl', `--db=unix:${dir}/run/db.sock`, 'get-fail-mode', 'vfwovs'],
    });
    expect(failMode.stdout.trim()).to.equal('secure');
  });
});

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}
