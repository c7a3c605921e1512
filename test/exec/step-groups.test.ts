// Steps sharing a process: `ip -batch` for consecutive `ip` steps of one netns, one `nft -f -`
// for consecutive nft scripts; which steps group, and the executor's bookkeeping against the
// real ip and nft in a netns of the test's own: a batch that fails at command N ran the ones
// before it, so exactly those are undone, and the error names step N; an nft transaction that
// fails ran nothing, and its scripts one by one say which fails.

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { oneLine } from '../../src/errors.js';
import { applySteps, undoAll } from '../../src/exec/apply.js';
import { nftLast } from '../../src/exec/nft-batch.js';
import { groupSteps } from '../../src/exec/step-groups.js';
import { nft } from '../../src/exec/tools.js';
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
      cmd: { argv: ['ip', '-n', 'ns1', '-batch', '-'], stdin: 'link add x type bridge\nlink set dev x up\n' },
      tool: 'ip',
    });
    expect(groups[3]!.batch?.cmd.argv).to.deep.equal(['ip', '-batch', '-']);
    expect(groups.filter((g) => g.batch)).to.have.length(2);
  });

  it('groups consecutive nft scripts of one netns into one script, and no other nft', () => {
    const script = (kind: string, netns: string | undefined, text: string): Step => ({
      kind,
      device: kind,
      owner: { kind: 'host' },
      do: { argv: nft(netns, '-f', '-'), stdin: text, inputShown: true },
    });
    const groups = groupSteps([
      script('a', 'ns1', 'add table inet a\n'),
      script('b', 'ns1', 'add table bridge b\n'),
      script('c', 'ns2', 'add table inet c\n'),
      step('d', ['ip', '-n', 'ns2', 'link', 'set', 'dev', 'y', 'up']),
      script('e', 'ns2', 'add table inet e\n'),
      // A script whose input must not show (never vfwire's nft, but not for grouping either).
      step('f', ['ip', 'netns', 'exec', 'ns2', 'nft', '-f', '-'], undefined, 'add table inet f\n'),
      step('g', ['ip', 'netns', 'exec', 'ns2', 'nft', 'list', 'ruleset']),
      script('h', undefined, 'add table inet h\n'),
      script('i', undefined, 'add table inet i'),
    ]);
    expect(groups.map((g) => g.steps.map((s) => s.kind).join(''))).to.deep.equal(['ab', 'c', 'd', 'e', 'f', 'g', 'hi']);
    expect(groups[0]!.batch).to.deep.equal({
      cmd: {
        argv: ['ip', 'netns', 'exec', 'ns1', 'nft', '-f', '-'],
        stdin: 'add table inet a\nadd table bridge b\n',
        inputShown: true,
      },
      tool: 'nft',
    });
    expect(groups[6]!.batch?.cmd).to.deep.equal({
      argv: ['nft', '-f', '-'],
      stdin: 'add table inet h\nadd table inet i\n',
      inputShown: true,
    });
  });
});

describe('nft scripts last in a release', () => {
  const undo = (netns: string | undefined, text: string): Command => ({
    argv: nft(netns, '-f', '-'),
    stdin: text,
    inputShown: true,
  });
  it('moves them after the rest, one per netns, in order, each merged one keeping its parts', () => {
    const a = undo('ns1', 'delete element bridge vfwire reps { "r0" }\n');
    const b = undo('ns2', 'delete chain inet vfwire vni100\n');
    const c = undo('ns1', 'delete chain inet vfwire vni100\n');
    const link = { argv: ['ip', '-n', 'ns1', 'link', 'del', 'vfwbr100'] };
    expect(nftLast([a, link, b, c])).to.deep.equal([link, { ...undo('ns1', a.stdin! + c.stdin!), parts: [a, c] }, b]);
    expect(nftLast([link])).to.deep.equal([link]);
  });
});

/**
 * A netns of the calling describe's own (made before it, removed after), a runner that records
 * what it runs, and the links in the netns but lo.
 */
function ownNetns(suffix: string) {
  const ns = `vfwt${randomBytes(3).toString('hex')}-${suffix}`;
  const runner = new ExecRunner(5_000);
  before(() => runner.run({ argv: ['ip', 'netns', 'add', ns] }));
  after(() => runner.run({ argv: ['ip', 'netns', 'del', ns] }).catch(() => undefined));
  const recording = (seen: Command[]) => ({
    run: (cmd: Command): Promise<RunResult> => {
      seen.push(cmd);
      return runner.run(cmd);
    },
  });
  const links = async () =>
    (JSON.parse((await runner.run({ argv: ['ip', '-n', ns, '-j', 'link', 'show'] })).stdout) as { ifname: string }[])
      .map((l) => l.ifname)
      .filter((n) => n !== 'lo')
      .sort();
  return { ns, runner, recording, links };
}

describe('ip -batch against the kernel', function () {
  this.timeout(20_000);
  const { ns, runner, recording, links } = ownNetns('batch');

  // Named so that no name reads as an abbreviated keyword (`ip link add a` is `address`).
  const veth = (x: string) =>
    step(
      `veth-${x}`,
      ['ip', '-n', ns, 'link', 'add', `vb${x}`, 'type', 'veth', 'peer', 'name', `vb${x}p`],
      ['ip', '-n', ns, 'link', 'del', `vb${x}`],
    );
  it('runs the group as one process', async () => {
    const seen: Command[] = [];
    await applySteps([veth('a'), veth('b')], recording(seen), { batch: true });
    expect(seen.map((c) => c.argv)).to.deep.equal([['ip', '-n', ns, '-batch', '-']]);
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
    const seen: Command[] = [];
    const err = await applySteps(
      [veth('c'), veth('d'), step('up-missing', ['ip', '-n', ns, 'link', 'set', 'dev', 'nosuch', 'up']), veth('e')],
      recording(seen),
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
    expect(seen.map((c) => c.argv)).to.deep.equal([
      ['ip', '-n', ns, '-batch', '-'],
      ['ip', '-n', ns, 'link', 'del', 'vbd'],
      ['ip', '-n', ns, 'link', 'del', 'vbc'],
    ]);
    expect(await links()).to.deep.equal([]);
  });
});

describe('a release: ip undo commands as batches, against the kernel', function () {
  this.timeout(20_000);
  const { ns, runner, recording, links } = ownNetns('undo');
  const make = (...names: string[]) =>
    applySteps(
      names.map((n) => step(n, ['ip', '-n', ns, 'link', 'add', n, 'type', 'veth', 'peer', 'name', `${n}p`])),
      runner,
      { batch: true },
    );
  const del = (name: string): Command => ({ argv: ['ip', '-n', ns, 'link', 'del', name] });

  it('runs consecutive ip commands of one netns as one process, split by any other command', async () => {
    await make('vuda', 'vudb', 'vudc');
    const seen: Command[] = [];
    const between = { argv: ['true'] };
    const errors = await undoAll([del('vuda'), del('vudb'), between, del('vudc')], recording(seen), { batch: true });
    expect(errors).to.deep.equal([]);
    expect(seen).to.deep.equal([
      { argv: ['ip', '-n', ns, '-batch', '-'], stdin: 'link del vuda\nlink del vudb\n' },
      between,
      del('vudc'),
    ]);
    expect(await links()).to.deep.equal([]);
  });

  it('one already gone counts as undone: the ones after it still run, as a batch', async () => {
    await make('vude', 'vudf', 'vudg');
    const seen: Command[] = [];
    const errors = await undoAll([del('vude'), del('vudgone'), del('vudf'), del('vudg')], recording(seen), {
      batch: true,
    });
    expect(errors).to.deep.equal([]);
    expect(seen.map((c) => c.stdin ?? c.argv.join(' '))).to.deep.equal([
      'link del vude\nlink del vudgone\nlink del vudf\nlink del vudg\n',
      'link del vudf\nlink del vudg\n',
    ]);
    expect(await links()).to.deep.equal([]);
  });

  it('one that fails is reported by its own command line, and does not strand the rest', async () => {
    await make('vudh', 'vudi');
    const errors = await undoAll([del('vudh'), del('lo'), del('vudi')], runner, { batch: true });
    expect(errors.map((e) => oneLine(e))).to.have.length(1);
    expect(oneLine(errors[0])).to.match(
      new RegExp(
        `^ip -n ${ns} link del lo, in ip -n ${ns} -batch - <<< \\(stdin\\): exit code \\d+: .*Command failed -:2`,
      ),
    );
    expect(await links()).to.deep.equal([]);
  });

  it('a netns already gone: every command of the batch counts as undone', async () => {
    const gone = { argv: ['ip', '-n', `${ns}-gone`, 'link', 'del', 'x'] };
    const other = { argv: ['ip', '-n', `${ns}-gone`, 'link', 'del', 'y'] };
    expect(await undoAll([gone, other], runner, { batch: true })).to.deep.equal([]);
  });
});

describe('nft transactions against the kernel', function () {
  this.timeout(20_000);
  const { ns, runner, recording } = ownNetns('nft');

  const tables = async () =>
    (
      JSON.parse((await runner.run({ argv: nft(ns, '-j', 'list', 'tables') })).stdout) as {
        nftables: { table?: { family: string; name: string } }[];
      }
    ).nftables
      .flatMap((i) => (i.table ? [`${i.table.family} ${i.table.name}`] : []))
      .sort();
  const table = (kind: string, t: string, script = `add table ${t}\n`): Step => ({
    kind,
    device: t,
    owner: { kind: 'host' },
    do: { argv: nft(ns, '-f', '-'), stdin: script, inputShown: true },
    undo: { argv: nft(ns, '-f', '-'), stdin: `delete table ${t}\n`, inputShown: true },
  });
  it('runs consecutive scripts as one nft', async () => {
    const seen: Command[] = [];
    await applySteps([table('a', 'inet ta'), table('b', 'bridge tb')], recording(seen), { batch: true });
    expect(seen).to.have.length(1);
    expect(await tables()).to.deep.equal(['bridge tb', 'inet ta']);
    const errors = await undoAll(nftLast([table('a', 'inet ta').undo!, table('b', 'bridge tb').undo!]), runner);
    expect(errors).to.deep.equal([]);
    expect(await tables()).to.deep.equal([]);
  });

  it('a failed transaction changed nothing: its scripts one by one undo the first and name the second', async () => {
    const seen: Command[] = [];
    const bad = table('bad', 'inet tbad', 'add table inet tbad\ndelete chain inet nosuch c\n');
    const err = await applySteps([table('a', 'inet ta'), bad, table('c', 'inet tc')], recording(seen), {
      batch: true,
      vm: 'vm1',
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(oneLine(err)).to.match(/^vm vm1: failed to bad inet tbad: .*No such file or directory/);
    // The merged script, then a and bad singly, then a's undo; c never ran on its own.
    expect(seen.map((c) => c.stdin)).to.deep.equal([
      'add table inet ta\nadd table inet tbad\ndelete chain inet nosuch c\nadd table inet tc\n',
      'add table inet ta\n',
      'add table inet tbad\ndelete chain inet nosuch c\n',
      'delete table inet ta\n',
    ]);
    expect(await tables()).to.deep.equal([]);
  });

  it('an undo transaction that fails runs its parts singly: the one that can, does', async () => {
    await runner.run({ argv: nft(ns, '-f', '-'), stdin: 'add table inet ta\n' });
    const errors = await undoAll(
      nftLast([
        { argv: nft(ns, '-f', '-'), stdin: 'delete table inet nosuch\n', inputShown: true },
        { argv: nft(ns, '-f', '-'), stdin: 'delete table inet ta\n', inputShown: true },
      ]),
      runner,
    );
    // The one stuck script is reported; it did not strand the other.
    expect(errors.map((e) => e.message)).to.have.length(1);
    expect(errors[0]!.message).to.include("<<< 'delete table inet nosuch': exit code 1");
    expect(await tables()).to.deep.equal([]);
  });
});
