// The typed refusal the mlx5 model throws, and how the real tools print one. Every refusal
// names a rule (the short name RULES.md lists with its source), the errno the kernel returns
// (null where the model cannot say which), and the stderr the tool would print.

export type Errno = 'EINVAL' | 'EOPNOTSUPP' | 'EBUSY' | 'EEXIST' | 'ENOENT' | 'ESRCH' | 'EPERM' | 'ERANGE' | 'ENODEV';

// strerror(3) texts of glibc, which iproute2 prints after "RTNETLINK answers: ".
const STRERROR: Record<Errno, string> = {
  EINVAL: 'Invalid argument',
  EOPNOTSUPP: 'Operation not supported',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EPERM: 'Operation not permitted',
  ERANGE: 'Numerical result out of range',
  ENODEV: 'No such device',
};

export function strerror(errno: Errno): string {
  return STRERROR[errno];
}

export class Mlx5Refusal extends Error {
  override readonly name = 'Mlx5Refusal';
  constructor(
    /** Short rule name, as in RULES.md (e.g. `mlx5.esw.spoofchk-legacy-only`). */
    readonly rule: string,
    /** What the kernel returns; null when the refusal is the tool's own or the model cannot say. */
    readonly errno: Errno | null,
    /** What the tool prints on stderr. */
    readonly stderr: string,
    /** Exit status of the tool (iproute2: 2 after a netlink error, 255 after exit(-1) in a parser). */
    readonly exitCode: number,
  ) {
    super(`${rule}: ${stderr}`);
  }
}

/** A command (or a form of one) the model does not know: strict, so refused too. */
export class UnmodeledCommand extends Mlx5Refusal {
  constructor(what: string) {
    super('model.unknown-command', null, `mlx5 model: does not know ${what}`, 1);
  }
}

/**
 * A netlink error as iproute2 prints it: with an extack message only "Error: <msg>." (lib/libnetlink.c
 * rtnl_talk_error -> nl_dump_ext_ack -> print_ext_ack_msg), without one "RTNETLINK answers: <strerror>".
 * tc adds "We have an error talking to the kernel" (tc/tc_filter.c tc_filter_modify).
 */
export function netlinkError(rule: string, errno: Errno, extack?: string, tool: 'ip' | 'tc' = 'ip'): Mlx5Refusal {
  const first = extack ? `Error: ${extack}${extack.endsWith('.') ? '' : '.'}` : `RTNETLINK answers: ${strerror(errno)}`;
  const text = tool === 'tc' ? `${first}\nWe have an error talking to the kernel` : first;
  return new Mlx5Refusal(rule, errno, text, 2);
}

/** devlink prints the extack, then "kernel answers: <strerror>" (lib/mnl_utils.c mnlu_gen_socket_sndrcv). */
export function devlinkError(rule: string, errno: Errno, extack?: string): Mlx5Refusal {
  const lines = extack ? [`Error: ${extack}${extack.endsWith('.') ? '' : '.'}`] : [];
  lines.push(`kernel answers: ${strerror(errno)}`);
  return new Mlx5Refusal(rule, errno, lines.join('\n'), 1);
}

/** An iproute2 parser refusal: it prints and exit(-1)s before talking to the kernel. */
export function toolError(rule: string, stderr: string): Mlx5Refusal {
  return new Mlx5Refusal(rule, null, stderr, 255);
}

/** `tee <sysfs file>`: the write(2) errno as coreutils prints it. */
export function teeError(rule: string, errno: Errno, path: string): Mlx5Refusal {
  return new Mlx5Refusal(rule, errno, `tee: ${path}: ${strerror(errno)}`, 1);
}

/** NL_SET_ERR_MSG_MOD prefixes KBUILD_MODNAME: mlx5's messages read "mlx5_core: ...". */
export const mlx5 = (msg: string) => `mlx5_core: ${msg}`;
