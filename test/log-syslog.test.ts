// The log to syslog as well: what a syslog daemon receives on its socket (a Unix datagram socket
// bound by python3 here, as journald's and rsyslog's /dev/log are), and a socket nobody serves.

import { expect } from 'chai';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeLogger, createLogger } from '../src/log.js';
import { waitFor } from '../src/wait.js';

// Binds the socket, prints each datagram received on a line of its own, N of them, then exits.
const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
for _ in range(int(sys.argv[2])):
    print(s.recv(65536).decode(), flush=True)
`;

describe('log to syslog', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vfwt-syslog-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('sends each line as vfwire with its priority, the component first, one line per entry', async () => {
    const socket = join(dir, 'log.sock');
    const receiver = execa('python3', ['-c', RECEIVER, socket, '2'], { timeout: 25_000 });
    await waitFor('the receiver socket', async () => (existsSync(socket) ? true : undefined));
    const log = createLogger(join(dir, 'log'), 'hook', { syslog: socket });
    log.info('leased', { vm: 'vm1', pf: 'p0' });
    log.error('prepare failed', { vm: 'vm1', error: 'line one\nline two' });
    await closeLogger(log);
    const [info, error] = (await receiver).stdout.split('\n');
    // logger's local form: <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG; daemon.info is 30, daemon.err 27.
    expect(info).to.match(/^<30>\w{3} [ \d]\d \d\d:\d\d:\d\d /);
    expect(info).to.include(`vfwire[${process.pid}]: hook: leased {"vm":"vm1","pf":"p0"}`);
    expect(error).to.match(/^<27>/);
    expect(error).to.include(': hook: prepare failed {"vm":"vm1","error":"line one\\nline two"}');
    expect(readFileSync(join(dir, 'log/vfwire.log'), 'utf8'), 'the file log too').to.include('"message":"leased"');
  });

  it('with no one on the socket: the file log alone, and nothing held up', async () => {
    const log = createLogger(join(dir, 'log'), 'hook', { syslog: join(dir, 'nobody.sock') });
    log.info('leased', { vm: 'vm1' });
    log.warn('still here');
    const t0 = Date.now();
    await closeLogger(log);
    expect(Date.now() - t0, 'closeLogger, ms').to.be.below(1000);
    const file = readFileSync(join(dir, 'log/vfwire.log'), 'utf8');
    expect(file).to.include('"message":"leased"').and.include('"message":"still here"');
  });
});
