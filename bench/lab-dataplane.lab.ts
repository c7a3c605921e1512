// `npm run bench -- --only lab`: the dataplane table for the bridge and the OVS overlay, measured
// inside a kernel lab VM (lab/run.sh 6.12 dist/bench/lab-dataplane.lab.js), whose Debian kernel
// has the openvswitch module this machine's lacks. Under QEMU TCG: absolute numbers are the
// emulator's, the ratios against the raw underlay of the same run are what it shows. The rows go
// to the results share (/run/lab/dataplane.json) for bench/run.ts.

import { readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { benchDataplane } from '../src/bench/dataplane-on-sim.js';
import { resultsTable } from '../src/bench/dataplane.js';

// OVS 3.1.0 started in a boot's first ~10 s runs without upcall handlers (test/lab/ovs-daemons.ts).
const uptime = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);

describe('lab bench: dataplane, bridge and OVS overlays', function () {
  this.timeout(1_200_000);
  it('measures both overlays and the raw underlay in one run', async () => {
    if (!process.env.VFWIRE_LAB) throw new Error('run it in a lab VM: lab/run.sh 6.12 dist/bench/lab-dataplane.lab.js');
    while (uptime() < 12) await new Promise((r) => setTimeout(r, 500));
    const seconds = Number(process.env.VFWIRE_BENCH_SECONDS ?? '2');
    const rows = await benchDataplane(seconds, 'vfwbenchlab', ['bridge', 'ovs'], `lab ${release()} (TCG)`);
    console.log(resultsTable(rows));
    writeFileSync('/run/lab/dataplane.json', JSON.stringify({ seconds, rows }, null, 2) + '\n');
  });
});
