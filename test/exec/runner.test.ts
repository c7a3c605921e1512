// The runner against the real tools: what counts as "already gone", timeouts, no shell.

import { expect } from 'chai';
import { NotFoundError } from '../../src/errors.js';
import { ifPresent } from '../../src/exec/if-present.js';
import { CommandError, ExecRunner } from '../../src/exec/runner.js';
import { runner as simRunner } from '../helpers/sim.js';

describe('ExecRunner', function () {
  this.timeout(30_000);
  const run = new ExecRunner(5_000);
  const ns = `vfwt-run-${process.pid}`;
  before(() => simRunner.run({ argv: ['ip', 'netns', 'add', ns] }));
  after(() => simRunner.run({ argv: ['ip', 'netns', 'del', ns] }).catch(() => undefined));

  const absent: [string, string[]][] = [
    ['ip link del of a missing device', ['ip', '-n', ns, 'link', 'del', 'vfwnope0']],
    [
      'ip link set nomaster of a missing device',
      ['ip', '-n', ns, 'link', 'set', 'dev', 'vfwnope0', 'nomaster', 'down'],
    ],
    [
      'bridge fdb del on a missing device',
      ['bridge', '-n', ns, 'fdb', 'del', '00:00:00:00:00:00', 'dev', 'vfwnope0', 'dst', '198.18.0.9'],
    ],
    ['a command in a netns that is gone', ['ip', '-n', 'vfwt-no-such-netns', 'link', 'del', 'x']],
    ['ip link show of a missing device', ['ip', '-n', ns, '-j', '-d', 'link', 'show', 'dev', 'vfwnope0']],
    ['ip addr show of a missing device', ['ip', '-n', ns, '-j', 'addr', 'show', 'dev', 'vfwnope0']],
    ['nft list of a missing table', ['ip', 'netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'inet', 'vfwnope']],
  ];
  // An nft batch is one transaction: a delete that fails on one missing object deleted nothing.
  it('nft delete of a missing table is not NotFound (its batch did nothing)', async () => {
    const err = await run
      .run({ argv: ['ip', 'netns', 'exec', ns, 'nft', 'delete', 'table', 'bridge', 'vfwnope'] })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(CommandError);
    expect(err).not.to.be.instanceOf(NotFoundError);
  });
  it("a long shown input is summed up, so the tool's own error follows the command", async () => {
    const stdin = Array.from({ length: 40 }, (_, i) => `add cookie=0x64,table=0,priority=${i},actions=drop`).join('\n');
    const argv = ['awk', '{ n = NR } END { print "-:" n ": bad rule" > "/dev/stderr"; exit 1 }', '-'];
    const err = (await run.run({ argv, stdin, inputShown: true }).catch((e: unknown) => e)) as Error;
    expect(err).to.be.instanceOf(CommandError);
    expect(err.message).to.match(
      / - <<< \(40 lines of input, as vfwire plan shows them\): exit code 1: -:40: bad rule$/,
    );
    const short = (await run.run({ argv, stdin: 'x\n', inputShown: true }).catch((e: unknown) => e)) as Error;
    expect(short.message).to.match(/ - <<< x: exit code 1: -:1: bad rule$/);
  });

  for (const [what, argv] of absent) {
    it(`${what} is NotFound`, async () => {
      const err = await run.run({ argv }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(NotFoundError);
    });
  }

  it('bridge fdb del of a missing entry on an existing device is NotFound', async () => {
    await run.run({
      argv: [
        'ip',
        '-n',
        ns,
        'link',
        'add',
        'vfwtvx9',
        'type',
        'vxlan',
        'id',
        '9',
        'dstport',
        '4789',
        'local',
        '198.18.0.1',
      ],
    });
    const err = await run
      .run({ argv: ['bridge', '-n', ns, 'fdb', 'del', '00:00:00:00:00:00', 'dev', 'vfwtvx9', 'dst', '198.18.0.9'] })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(NotFoundError);
  });

  it('other failures are CommandErrors with the command, exit code and stderr', async () => {
    const err = (await run
      .run({ argv: ['ip', '-n', ns, 'link', 'add', 'vfwtvx9', 'type', 'bridge'] })
      .catch((e: unknown) => e)) as Error;
    expect(err).to.be.instanceOf(CommandError);
    expect(err.message).to.match(
      /^ip -n \S+ link add vfwtvx9 type bridge: exit code 2: RTNETLINK answers: File exists/,
    );
  });

  it('kills a command that hangs, within the bound', async () => {
    const t0 = Date.now();
    const err = (await new ExecRunner(300).run({ argv: ['sleep', '30'] }).catch((e: unknown) => e)) as Error;
    expect(err).to.be.instanceOf(CommandError);
    expect(err.message).to.match(/timed out after 300 ms/);
    expect(Date.now() - t0).to.be.below(5_000);
  });

  it('passes arguments verbatim, never through a shell', async () => {
    const res = await run.run({ argv: ['printf', '%s', '$(id -u); `id`'] });
    expect(res.stdout).to.equal('$(id -u); `id`');
  });
});

describe('ifPresent: absence apart from failure', () => {
  it('answers undefined only for NotFoundError, and throws any other failure', async () => {
    expect(await ifPresent(Promise.resolve(3))).to.equal(3);
    expect(await ifPresent(Promise.reject(new NotFoundError('gone')))).to.equal(undefined);
    const timedOut = await ifPresent(
      Promise.reject(new CommandError('ip link show dev x: timed out after 300 ms')),
    ).catch((e: unknown) => e);
    expect(timedOut).to.be.instanceOf(CommandError);
  });
});
