// The executor against real commands (directories in a temp dir stand for kernel objects): steps
// run in order, a failure undoes the completed ones in reverse, undo goes on past its own
// failures, and an object already gone counts as undone.

import { expect } from 'chai';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VfwireError } from '../../src/errors.js';
import { applySteps, undoAll } from '../../src/exec/apply.js';
import { FaultRunner } from '../../src/exec/fault-runner.js';
import { CommandError, ExecRunner, type RunResult } from '../../src/exec/runner.js';
import type { Command, Step } from '../../src/exec/step.js';

describe('applySteps / undoAll', function () {
  this.timeout(20_000);
  const runner = new ExecRunner(5_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vfwt-apply-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  // A step that makes directory `name`; its undo removes it (rmdir fails on a non-empty one).
  const mk = (name: string): Step => ({
    kind: 'mkdir',
    device: name,
    owner: { kind: 'host' },
    do: { argv: ['mkdir', join(dir, name)] },
    undo: { argv: ['rmdir', join(dir, name)] },
  });
  const present = () => readdirSync(dir).sort();
  // Records each command as it reaches the real runner, to show the order.
  const recording = (seen: string[]) => ({
    run: (cmd: Command): Promise<RunResult> => {
      seen.push(`${cmd.argv[0]} ${cmd.argv[1]!.slice(dir.length + 1)}`);
      return runner.run(cmd);
    },
  });

  it('runs every step in order and tells of each', async () => {
    const told: string[] = [];
    await applySteps([mk('a'), mk('a/b'), mk('c')], runner, { onApplied: (s) => told.push(s.device) });
    expect(present()).to.deep.equal(['a', 'c']);
    expect(existsSync(join(dir, 'a/b'))).to.equal(true);
    expect(told).to.deep.equal(['a', 'a/b', 'c']);
  });

  it('on a failure undoes the completed steps in reverse and names the failed step', async () => {
    const seen: string[] = [];
    // mkdir of x/y fails: x does not exist.
    const err = await applySteps([mk('a'), mk('b'), mk('x/y'), mk('c')], recording(seen), { vm: 'vm1' }).catch(
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(VfwireError);
    expect((err as Error).message).to.equal('vm vm1: failed to mkdir x/y');
    expect((err as VfwireError).cause).to.be.instanceOf(CommandError);
    expect(seen).to.deep.equal(['mkdir a', 'mkdir b', 'mkdir x/y', 'rmdir b', 'rmdir a']);
    expect(present()).to.deep.equal([]);
  });

  it('goes on past an undo that fails and reports it with the failure', async () => {
    const seen: string[] = [];
    // b's undo fails (b is not empty once b/keep exists); a is still undone.
    const steps = [mk('a'), mk('b'), { ...mk('b/keep'), undo: undefined }, mk('x/y')];
    const err = (await applySteps(steps, recording(seen)).catch((e: unknown) => e)) as Error;
    expect(err.message).to.match(/^failed to mkdir x\/y \(and 1 undo step\(s\) failed: rmdir .*\/b: exit code 1/);
    expect(seen.slice(-2)).to.deep.equal(['rmdir b', 'rmdir a']);
    expect(present()).to.deep.equal(['b']);
  });

  it('undoAll counts an object already gone as undone and returns, never throws, other failures', async () => {
    await applySteps([mk('a'), mk('full'), mk('full/x')], runner);
    const errors = await undoAll(
      [
        { argv: ['ip', 'link', 'del', 'vfwnope0'] }, // gone: NotFoundError, not a failure
        { argv: ['rmdir', join(dir, 'full')] }, // not empty: a failure
        { argv: ['rmdir', join(dir, 'a')] }, // still runs
      ],
      runner,
    );
    expect(errors).to.have.length(1);
    expect(errors[0]).to.be.instanceOf(CommandError);
    expect(present()).to.deep.equal(['full']);
  });

  it('FaultRunner fails command N without running it; the rollback before it still runs', async () => {
    const err = (await applySteps([mk('a'), mk('b'), mk('c')], new FaultRunner(runner, { failAt: 2 })).catch(
      (e: unknown) => e,
    )) as VfwireError;
    expect(err.message).to.equal('failed to mkdir c');
    expect(String(err.cause)).to.match(/injected failure at command 2/);
    expect(present()).to.deep.equal([]);
  });

  it('FaultRunner hangs before command N until killed: the steps before it are done, N never runs', async () => {
    // In a process of its own, as the hook is: it hangs for good and is killed there.
    const dist = new URL('../../src/exec/', import.meta.url).href;
    const script = `
      const { applySteps } = await import('${dist}apply.js');
      const { FaultRunner } = await import('${dist}fault-runner.js');
      const { ExecRunner } = await import('${dist}runner.js');
      const mk = (n) => ({ kind: 'mkdir', device: n, owner: { kind: 'host' }, do: { argv: ['mkdir', process.argv[1] + '/' + n] } });
      await applySteps([mk('a'), mk('b')], new FaultRunner(new ExecRunner(5000), { hangAt: 1 }));
      console.log('finished');`;
    const child = execa(process.execPath, ['--input-type=module', '-e', script, dir], {
      reject: false,
      timeout: 2_000,
    });
    const res = await child;
    expect(res.timedOut, res.stderr).to.equal(true);
    expect(res.stdout).to.equal('');
    expect(present()).to.deep.equal(['a']);
  });
});
