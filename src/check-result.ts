// One line of `vfwire doctor`: a precondition, whether it holds, and the fix. Checks live with
// what they check (the overlays, ipsec, failover); doctor/ only runs them.

export type Status = 'pass' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  check: string;
  status: Status;
  detail: string;
  fix?: string;
}

export const pass = (check: string, detail: string): CheckResult => ({ check, status: 'pass', detail });
export const fail = (check: string, detail: string, fix: string): CheckResult => ({
  check,
  status: 'fail',
  detail,
  fix,
});
export const warn = (check: string, detail: string, fix: string): CheckResult => ({
  check,
  status: 'warn',
  detail,
  fix,
});
