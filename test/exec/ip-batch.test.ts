// `ip -batch` for consecutive `ip` steps of one netns: which steps group, and the executor's
// bookkeeping against the real ip in a netns of the test's own: a batch that fails at command N
// ran the ones before it, so exactly those are undone, and the error names step N.

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { oneLine } from '../../src/errors.js';
import { applySteps } from '../../src/exec/apply.js';
import { groupSteps } from '../../src/exec/ip-batch.js';
import { ExecRunner, type RunResult } from '../../src/exec/runner.js';
import type { Command, Step } from '../../src/exec/step.js';

const step = (kind: string, argv: string[], undo?: string[], stdin?: string): Step => ({
  kind,
  device: kind,
  owner: { kind: 'host' },
  do: { argv, ...(stdin ? { stdin } : {}) },
  ...(undo ? { undo: { argv: undo } } : {}),
});

describe('ip -batch groups', () => {
  it('groups consecutive ip link/addr steps of one netns, and nothing else', () => {
    const groups = groupSteps([
      step('a', ['ip', '-n', 'ns1', 'link', 'add', 'x', 'type', 'bridge']),
      step('b', ['ip', '-n', 'ns1', 'link', 'set', 'dev', 'x', 'up']),
      step('c', ['ip', '-n', 'ns2', 'link', 'set', 'dev', 'y', 'up']),
      step('d', ['bridge', '-n', 'ns2', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'y']),
      step('e', ['ip', 'link', 'set', 'dev', 'z', 'up']),
      step('f', ['ip', 'addr', 'add', '198.18.0.1/24', 'dev', 'z']),
      step('g', ['ip', 'netns', 'exec', 'ns1', 'nft', '-f', '-'], undefined, 'flush ruleset'),
      step('h', ['ip', 'xfrm', 'state', 'add'], undefined, 'secret'),
      step('i', ['ip', 'link', 'set', 'dev', 'z', 'alias', 'a b']),
      step('j', ['ip', 'link', 'set', 'dev', 'z', 'alias', '#x']),
    ]);
    expect(groups.map((g) => g.steps.map((s) => s.kind).join(''))).to.deep.equal([
      'ab',
      'c',
      'd',
      'ef',
      'g',
      'h',
      'i',
      'j',
    ]);
    expect(groups[0]!.batch).to.deep.equal({
      argv: ['ip', '-n', 'ns1', '-batch', '-'],
      stdin: 'link add x type bridge\nlink set dev x up\n',
    });
    expect(groups[3]!.batch?.argv).to.deep.equal(['ip', '-batch', '-']);
    expect(groups.filter((g) => g.batch)).to.have.length(2);
  });
});

describe('ip -batch against the kernel', function () {
  this.timeout(20_000);
  const ns = `vfwt${randomBytes(3).toString('hex')}-batch`;
  const runner = new ExecRunner(5_000);
  before(() => runner.run({ argv: ['ip', 'netns', 'add', ns] }));
  after(() => runner.run({ argv: ['ip', 'netns', 'del', ns] }).catch(() => undefined));

  const links = async () =>
    (JSON.parse((await runner.run({ argv: ['ip', '-n', ns, '-j', 'link', 'show'] })).stdout) as { ifname: string }[])
      .map((l) => l.ifname)
      .filter((n) => n !== 'lo')
      .sort();
  // Named so that no name reads as an abbreviated keyword (`ip link add a` is `address`).
  const veth = (x: string) =>
    step(
      `veth-${x}`,
      ['ip', '-n', ns, 'link', 'add', `vb${x}`, 'type', 'veth', 'peer', 'name', `vb${x}p`],
      ['ip', '-n', ns, 'link', 'del', `vb${x}`],
    );
  const counting = (argv: string[][]) => ({
    run: (cmd: Command): Promise<RunResult> => {
      argv.push(cmd.argv);
      return runner.run(cmd);
    },
  });

  it('runs the group as one process', async () => {
    const seen: string[][] = [];
    await applySteps([veth('a'), veth('b')], counting(seen), { batch: true });
    expect(seen).to.deep.equal([['ip', '-n', ns, '-batch', '-']]);
    expect(await links()).to.deep.equal(['vba', 'vbap', 'vbb', 'vbbp']);
    await applySteps(
      [step('del-a', ['ip', '-n', ns, 'link', 'del', 'vba']), step('del-b', ['ip', '-n', ns, 'link', 'del', 'vbb'])],
      runner,
      {
        batch: true,
      },
    );
    expect(await links()).to.deep.equal([]);
  });

  it('a batch that fails at its third command undoes the two before it, and names the third', async () => {
    const seen: string[][] = [];
    const err = await applySteps(
      [veth('c'), veth('d'), step('up-missing', ['ip', '-n', ns, 'link', 'set', 'dev', 'nosuch', 'up']), veth('e')],
      counting(seen),
      { batch: true, vm: 'vm1' },
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(oneLine(err)).to.match(
      new RegExp(
        `^vm vm1: failed to up-missing up-missing: ip -n ${ns} link set dev nosuch up, in ip -n ${ns} -batch - <<< \\(stdin\\): exit code \\d+: .*Command failed -:3`,
      ),
    );
    // The batch, then the undo of d and c, in that order; e never ran.
    expect(seen).to.deep.equal([
      ['ip', '-n', ns, '-batch', '-'],
      ['ip', '-n', ns, 'link', 'del', 'vbd'],
      ['ip', '-n', ns, 'link', 'del', 'vbc'],
    ]);
    expect(await links()).to.deep.equal([]);
  });
});
