// The kernel lab tier (lab/README.md): for each lab kernel and each inner suite
// (dist/test/lab/suites/*.lab.js) one boot of a lab VM that runs the suite with mocha inside,
// and one test here that fails with the inner failures. Missing root, QEMU or a kernel fails
// with run.sh's one-line reason; VFWIRE_LAB=off skips the tier on purpose.

import { basename } from 'node:path';
import { insideLabVm, labKernels, labOff, labSuites, runLab, SUITES_DIR, type LabRun } from './lab-runner.js';

const secs = (ms: number | undefined) => (ms === undefined ? '?' : (ms / 1000).toFixed(1));

function report(run: LabRun): void {
  if (!run.kver) return;
  console.log(`        ${run.kver ?? run.kernel}: boot ${secs(run.bootMs)} s, ${secs(run.totalMs)} s in all (boot, suite, power-off)`);
  for (const t of run.tests) {
    const mark = t.state === 'passed' ? '✓' : t.state === 'failed' ? '✗' : '-';
    console.log(`          ${mark} ${t.fullTitle}${t.durationMs !== undefined ? ` (${t.durationMs} ms)` : ''}${t.message ? `: ${t.message}` : ''}`);
  }
}

describe('lab: Debian kernels under QEMU', function () {
  const skip = labOff() ? 'VFWIRE_LAB=off' : insideLabVm() ? `already inside lab VM ${process.env.VFWIRE_LAB}` : undefined;
  if (skip) {
    it('skipped', function () {
      console.log(`      lab tier skipped: ${skip}`);
      this.skip();
    });
    return;
  }

  const suites = labSuites();
  if (suites.length === 0) {
    it('has inner suites', () => {
      throw new Error(`no inner suites (*.lab.js) in ${SUITES_DIR}: run npm run build`);
    });
    return;
  }

  for (const kernel of labKernels()) {
    describe(`kernel ${kernel}`, function () {
      // run.sh kills a VM past VFWIRE_LAB_TIMEOUT; this is only the outer bound.
      this.timeout((Number(process.env.VFWIRE_LAB_TIMEOUT ?? 600) + 90) * 1000);
      this.slow(60_000);

      for (const suite of suites) {
        it(basename(suite, '.js'), async () => {
          const run = await runLab(kernel, suite);
          report(run);
          if (run.failure) {
            throw new Error(run.consoleTail && run.kver ? `${run.failure}\nconsole ends with:\n${run.consoleTail}` : run.failure);
          }
          const failed = run.tests.filter((t) => t.state === 'failed');
          if (failed.length) {
            throw new Error(`${failed.length} of ${run.tests.length} inner tests failed on ${run.kver}:\n${failed.map((t) => `  ${t.fullTitle}: ${t.message}`).join('\n')}`);
          }
          if (run.exitCode !== 0) throw new Error(`${run.line} (no inner test failed)`);
          if (run.tests.filter((t) => t.state === 'passed').length === 0) throw new Error(`no inner test passed on ${run.kver}: ${run.line}`);
        });
      }
    });
  }
});
