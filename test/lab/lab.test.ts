// The kernel lab tier (lab/README.md): for each lab kernel one boot of a lab VM that runs every
// inner suite (dist/test/lab/suites/*.lab.js) in one mocha (a boot and a Node start cost 10-15 s
// under TCG), and one test here per suite that fails with that suite's inner failures. Missing
// root, QEMU or a kernel fails each with run.sh's one-line reason; VFWIRE_LAB=off skips the tier
// on purpose.

import { expect } from 'chai';
import { basename } from 'node:path';
import {
  insideLabVm,
  labKernels,
  labOff,
  labSuites,
  runLab,
  SUITES_DIR,
  type InnerTest,
  type LabRun,
} from './lab-runner.js';

const secs = (ms: number | undefined) => (ms === undefined ? '?' : (ms / 1000).toFixed(1));

function report(run: LabRun, suite: string, tests: InnerTest[]): void {
  if (!run.kver) return;
  const ms = tests.reduce((sum, t) => sum + (t.durationMs ?? 0), 0);
  console.log(
    `        ${run.kver}: ${basename(suite, '.lab.js')}'s tests ${secs(ms)} s (the boot: ${secs(run.bootMs)} s to stage 2, ${secs(run.totalMs)} s in all)`,
  );
  for (const t of tests) {
    const mark = t.state === 'passed' ? '✓' : t.state === 'failed' ? '✗' : '-';
    console.log(
      `          ${mark} ${t.fullTitle}${t.durationMs !== undefined ? ` (${t.durationMs} ms)` : ''}${t.message ? `: ${t.message}` : ''}`,
    );
  }
  const name = `${basename(suite, '.lab.js')}: `;
  for (const r of run.reports) if (r.startsWith(name)) console.log(`          ${r.slice(name.length)}`);
}

describe('lab: Debian kernels under QEMU', function () {
  const skip = labOff()
    ? 'VFWIRE_LAB=off'
    : insideLabVm()
      ? `already inside lab VM ${process.env.VFWIRE_LAB}`
      : undefined;
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
      throw new Error(
        `no inner suites (*.lab.js) in ${SUITES_DIR}${process.env.VFWIRE_LAB_SUITES ? ` named by VFWIRE_LAB_SUITES=${process.env.VFWIRE_LAB_SUITES}` : ''}: run npm run build`,
      );
    });
    return;
  }

  // A kernel panic before init is the emulator's bad luck (seen under TCG on 6.12): run.sh boots
  // once more. Forced here with an init the initramfs lacks: both boots panic in early init.
  describe('a boot that dies before stage 2', function () {
    this.timeout(240_000);
    it("is tried once more, and then failed with run.sh's reason", async () => {
      const kernel = labKernels()[0]!;
      const run = await runLab(kernel, suites.slice(0, 1), { VFWIRE_LAB_APPEND: 'rdinit=/lab-no-such-init' });
      const retried = run.labLines.filter((l) =>
        / boot 1 died before stage 2 \(qemu exited \d+; console ends: /.test(l),
      );
      expect(retried, run.labLines.join('\n')).to.have.length(1);
      expect(
        run.labLines.filter((l) => / boot 2 died /.test(l)),
        'a third boot',
      ).to.deep.equal([]);
      expect(run.failure, run.line).to.match(/the VM stopped without a test result/);
      expect(run.exitCode).to.equal(125);
      expect(run.tests).to.deep.equal([]);
    });
  });

  for (const kernel of labKernels()) {
    describe(`kernel ${kernel}`, function () {
      // run.sh kills a VM past VFWIRE_LAB_TIMEOUT; this is only the outer bound.
      this.timeout((Number(process.env.VFWIRE_LAB_TIMEOUT ?? 900) + 90) * 1000);
      this.slow(60_000);
      let run: LabRun;
      // The boot is the kernel's, never a suite's failure: each suite below reports it.
      before(async () => {
        run = await runLab(kernel, suites);
      });

      suites.forEach((suite, i) => {
        it(basename(suite, '.js'), () => {
          if (run.failure) {
            throw new Error(
              run.consoleTail && run.kver ? `${run.failure}\nconsole ends with:\n${run.consoleTail}` : run.failure,
            );
          }
          const tests = run.tests.filter((t) => t.file === suite);
          report(run, suite, tests);
          const failed = tests.filter((t) => t.state === 'failed');
          if (failed.length) {
            throw new Error(
              `${failed.length} of ${tests.length} inner tests failed on ${run.kver}:\n${failed.map((t) => `  ${t.fullTitle}: ${t.message}`).join('\n')}`,
            );
          }
          if (tests.filter((t) => t.state === 'passed').length === 0)
            throw new Error(`no inner test of ${basename(suite)} passed on ${run.kver}: ${run.line}`);
          // mocha's status counts every suite's failures: only the last suite says so, once.
          if (i === suites.length - 1 && run.exitCode !== 0 && !run.tests.some((t) => t.state === 'failed'))
            throw new Error(`${run.line} (no inner test failed)`);
        });
      });
    });
  }
});
