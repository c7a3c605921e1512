// The kernel lab tier, test side (lab/README.md): boots a lab VM through lab/run.sh for inner
// suites (test/lab/suites/*.lab.ts, compiled to dist/test/lab/suites/*.lab.js), and reads back
// what mocha reported inside, test by test with the file it came from. Inner suites call
// requireLabVm() first.

import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/test/lab/ -> the checkout.
export const CHECKOUT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const RUN_SH = join(CHECKOUT, 'lab/run.sh');
export const SUITES_DIR = join(CHECKOUT, 'dist/test/lab/suites');

/** The kernels the outer suite boots: VFWIRE_LAB_KERNELS=6.12 (comma-separated) narrows it. */
export function labKernels(): string[] {
  return (process.env.VFWIRE_LAB_KERNELS ?? '6.1,6.12')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
}

/** The compiled inner suites, sorted; VFWIRE_LAB_SUITES=static-ipsec,... (comma-separated) narrows them. */
export function labSuites(): string[] {
  if (!existsSync(SUITES_DIR)) return [];
  const want = process.env.VFWIRE_LAB_SUITES?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return readdirSync(SUITES_DIR)
    .filter((f) => f.endsWith('.lab.js') && (!want?.length || want.includes(f.slice(0, -'.lab.js'.length))))
    .sort()
    .map((f) => join(SUITES_DIR, f));
}

/** VFWIRE_LAB=off: the lab tier is skipped on purpose. */
export function labOff(): boolean {
  return process.env.VFWIRE_LAB === 'off';
}

/** Inside a lab VM stage2.sh sets VFWIRE_LAB to the VM's kernel release. */
export function insideLabVm(): boolean {
  const v = process.env.VFWIRE_LAB;
  return v !== undefined && v !== '' && v !== 'off';
}

/** For inner suites: refuses to run anywhere but in a lab VM, as root. */
export function requireLabVm(): string {
  if (!insideLabVm())
    throw new Error('not inside a kernel lab VM (VFWIRE_LAB unset): run it with lab/run.sh KVER FILE');
  if (process.getuid?.() !== 0) throw new Error(`lab VM ${process.env.VFWIRE_LAB}: inner suites run as root`);
  return release();
}

/**
 * For inner tests of vfwire's own bookkeeping, which no kernel changes (a crash's
 * reconciliation): whether this lab VM's kernel is at least major.minor, so that they run on
 * the newest lab kernel only and the other's run is spared their minutes.
 */
export function labKernelAtLeast(major: number, minor: number): boolean {
  const [maj = 0, min = 0] = release().split(/[.-]/).map(Number);
  return maj > major || (maj === major && min >= minor);
}

/** Inside a lab VM: where labReport() writes, in the results share. */
const REPORT_FILE = '/run/lab/report.txt';

/**
 * For inner suites: a measurement worth printing outside (a gap, a time), as `suite: line`.
 * It goes to the console, and the outer test prints it beside the suite's results.
 */
export function labReport(suite: string, line: string): void {
  console.log(`      ${line}`);
  if (insideLabVm()) appendFileSync(REPORT_FILE, `${suite}: ${line.replace(/\n/g, ' ')}\n`);
}

export interface InnerTest {
  fullTitle: string;
  /** The suite file it ran from (absolute, as run.sh passed it). */
  file?: string;
  state: 'passed' | 'failed' | 'pending';
  durationMs?: number;
  /** A failure's message, first line. */
  message?: string;
}

export interface LabRun {
  kernel: string;
  suites: string[];
  /** The booted release, when the lab got that far. */
  kver?: string;
  exitCode: number;
  bootMs?: number;
  totalMs: number;
  /** run.sh's last "lab: ..." line: the times and mocha's status, or why the lab failed. */
  line: string;
  /** Every "lab: ..." line run.sh wrote (a retried boot's among them). */
  labLines: string[];
  /** Set when the lab itself failed (no kernel, no QEMU, boot failure, timeout): one line. */
  failure?: string;
  tests: InnerTest[];
  /** labReport() lines, `suite: line`. */
  reports: string[];
  consoleTail: string;
}

interface MochaJsonTest {
  fullTitle: string;
  file?: string;
  duration?: number;
  err?: { message?: string };
}
interface MochaJson {
  tests: MochaJsonTest[];
  failures: MochaJsonTest[];
  pending: MochaJsonTest[];
}

function innerTests(json: MochaJson): InnerTest[] {
  const out: InnerTest[] = [];
  const firstLine = (m: string | undefined) => (m ?? 'failed').split('\n')[0]!;
  const seen = new Set<string>();
  for (const t of json.tests) {
    const failed = t.err !== undefined && Object.keys(t.err).length > 0;
    out.push({
      fullTitle: t.fullTitle,
      file: t.file,
      state: failed ? 'failed' : 'passed',
      durationMs: t.duration,
      ...(failed ? { message: firstLine(t.err?.message) } : {}),
    });
    seen.add(t.fullTitle);
  }
  // Hook failures ("before all" hook ...) are failures without a test.
  for (const t of json.failures)
    if (!seen.has(t.fullTitle))
      out.push({ fullTitle: t.fullTitle, file: t.file, state: 'failed', message: firstLine(t.err?.message) });
  for (const t of json.pending)
    if (!seen.has(t.fullTitle)) out.push({ fullTitle: t.fullTitle, file: t.file, state: 'pending' });
  return out;
}

const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : undefined);

/**
 * Boots kernel `kernel` (6.1, 6.12, a release) once and runs `suites` in it, in one mocha, with
 * `env` over this process's environment. Never throws for a lab failure: that is `failure`, as
 * run.sh said it; `stderr` holds all run.sh said. The results directory is removed afterwards.
 */
export async function runLab(kernel: string, suites: string[], env: NodeJS.ProcessEnv = {}): Promise<LabRun> {
  const dir = mkdtempSync(join(tmpdir(), 'vfwire-lab-'));
  try {
    // run.sh bounds the VM itself (VFWIRE_LAB_TIMEOUT); this bound only catches run.sh hanging.
    const limitMs = (Number(process.env.VFWIRE_LAB_TIMEOUT ?? 900) + 60) * 1000;
    const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve) => {
      const child = spawn(RUN_SH, ['--quiet', '--results', dir, kernel, ...suites], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, ...env },
      });
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const timer = setTimeout(() => child.kill('SIGTERM'), limitMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        resolve({ code: 125, stderr: `lab: cannot run ${RUN_SH}: ${e.message}` });
      });
      child.on('close', (c, sig) => {
        clearTimeout(timer);
        resolve({
          code: c ?? 128,
          stderr: err + (sig ? `\nlab: run.sh killed by ${sig} after ${limitMs / 1000} s` : ''),
        });
      });
    });
    const labLines = stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('lab: '));
    const line = labLines.at(-1) ?? `lab: run.sh exited ${code}: ${stderr.trim().split('\n').pop() ?? ''}`;
    const timing = JSON.parse(read(join(dir, 'timing.json')) ?? '{}') as {
      kver?: string;
      boot_ms?: number | null;
      total_ms?: number;
    };
    const results = read(join(dir, 'results.json'));
    const failed = read(join(dir, 'fail'));
    const consoleText = (read(join(dir, 'console.log')) ?? '').replace(/\r/g, '');
    return {
      kernel,
      suites,
      ...(timing.kver ? { kver: timing.kver } : {}),
      exitCode: code,
      ...(typeof timing.boot_ms === 'number' ? { bootMs: timing.boot_ms } : {}),
      totalMs: timing.total_ms ?? 0,
      line,
      labLines,
      ...(failed !== undefined || results === undefined ? { failure: line } : {}),
      tests: results ? innerTests(JSON.parse(results) as MochaJson) : [],
      reports: (read(join(dir, 'report.txt')) ?? '').split('\n').filter(Boolean),
      consoleTail: consoleText
        .split('\n')
        .filter((l) => l.trim())
        .slice(-20)
        .join('\n'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
