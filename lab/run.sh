#!/usr/bin/env bash
# Runs mocha files of this checkout inside a kernel lab VM: Debian's kernel KVER booted by
# QEMU under TCG with this machine's root filesystem (see lab/README.md), as root, with
# VFWIRE_LAB=<the VM's kernel release> and the caller's CI. Exits with mocha's status.
#
#   lab/run.sh [--results DIR] [--quiet] KVER TESTFILE...
#
#   KVER       6.1, 6.12 or a full installed release (lab/build-lab.sh picks the kernel)
#   TESTFILE   compiled test files, e.g. dist/test/lab/suites/kernel-features.lab.js; several
#              run in one mocha, in one boot (a boot and a Node start cost 10-15 s under TCG)
#   --results  an existing directory to share with the VM for the results (kept; default: a
#              temporary one under /tmp, removed on exit). It ends up holding job.env,
#              console.log (the serial console), results.json (mocha's JSON reporter),
#              status (mocha's exit code), timing.json, report.txt (the suites' measurements,
#              when they made any), console.bootN.log (a boot that died before stage 2
#              and was tried again), and fail (one line) when the lab failed.
#   --quiet    do not copy the console to stdout while the VM runs
#
# Environment: VFWIRE_LAB_BOOT_TIMEOUT (s, default 120) bounds the boot up to stage 2,
# VFWIRE_LAB_TIMEOUT (s, default 900) the whole run; a VM past either is killed. A boot that
# dies before stage 2 is tried again, VFWIRE_LAB_BOOT_TRIES (default 2) times in all.
# VFWIRE_LAB_APPEND adds to the kernel command line (e.g. lab.msize=N, see lab/init.sh);
# VFWIRE_LAB_QEMU_EXTRA to QEMU's, split at spaces (e.g. -monitor unix:/tmp/lab.sock,server,nowait
# for `info jit`).
#
# The last line on stderr is always one "lab: kernel K: ..." line: the times and mocha's
# status, or why the lab failed. Exit: mocha's status (0 passed, N failures), 124 timeout,
# 125 the lab itself failed (no kernel, no QEMU, a failed boot).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd -P)
checkout=$(dirname "$here")
results= quiet=0
while [ $# -gt 0 ]; do
  case "$1" in
    --results) results=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) echo "lab: unknown option $1 (see --help)" >&2; exit 125 ;;
    *) break ;;
  esac
done
want=${1:-}
[ $# -gt 0 ] && shift

qpid= tpid= build_err= own_results=0
cleanup() {
  # Only what this script started: its QEMU, its console follower, its temporary files.
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
    kill "$qpid" 2>/dev/null || true
    sleep 1
    kill -9 "$qpid" 2>/dev/null || true
  fi
  if [ -n "$tpid" ]; then kill "$tpid" 2>/dev/null || true; fi
  if [ -n "$build_err" ]; then rm -f "$build_err"; fi
  if [ "$own_results" = 1 ]; then rm -rf "$results"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
label="kernel ${want:-?}"
say() { echo "lab: $label: $*" >&2; }
die() {
  local code=$1
  shift
  [ -n "$results" ] && [ -d "$results" ] && echo "$*" > "$results/fail"
  if [ "${label_done:-0}" = 1 ]; then say "$*"; else echo "lab: $*" >&2; fi
  exit "$code"
}
[ -n "$want" ] && [ $# -gt 0 ] || die 125 "usage: lab/run.sh [--results DIR] [--quiet] KVER TESTFILE..."

[ "$(id -u)" -eq 0 ] || die 125 "must run as root (QEMU reads the whole root filesystem for the VM; the suites run as root inside)"
command -v qemu-system-x86_64 >/dev/null || die 125 "qemu-system-x86_64 not found (run scripts/bootstrap.sh)"
# Both go on QEMU's command line (where a comma separates options) and the kernel's (spaces).
case "$checkout" in *[[:space:],]*) die 125 "the checkout path must not contain spaces or commas: $checkout" ;; esac
testfiles=()
for f in "$@"; do
  [ -f "$f" ] || die 125 "no test file $f"
  f=$(realpath "$f")
  # The checkout is shared on its own, wherever it is; otherwise /tmp, /run, /proc, /sys and
  # /dev are the VM's own: files there are not what the host has.
  case "$f" in
    "$checkout"/*) ;;
    /tmp/* | /run/* | /proc/* | /sys/* | /dev/*)
      die 125 "$f is outside the checkout, under a directory the VM does not share (/tmp /run /proc /sys /dev)" ;;
  esac
  # job.env carries them space-separated.
  case "$f" in *[[:space:]]*) die 125 "a test file's path must not contain spaces: $f" ;; esac
  testfiles+=("$f")
done

build_err=$(mktemp)
if ! lab_dir=$("$here/build-lab.sh" "$want" 2> "$build_err"); then
  reason=$(grep '^lab: ' "$build_err" | tail -n 1 | sed 's/^lab: //')
  [ -n "$reason" ] || reason="build-lab.sh failed: $(tail -n 1 "$build_err")"
  rm -f "$build_err"
  die 125 "$reason"
fi
grep -v '^lab: ' "$build_err" >&2 || true
rm -f "$build_err"
kver=$(cat "$lab_dir/kver")
label="kernel $kver" label_done=1

if [ -z "$results" ]; then
  results=$(mktemp -d /tmp/vfwire-lab.XXXXXX)
  own_results=1
fi
[ -d "$results" ] || die 125 "no results directory $results"
results=$(realpath "$results")
case "$results" in *[[:space:],]*) die 125 "the results path must not contain spaces or commas: $results" ;; esac
rm -f "$results"/{job.env,console.log,qemu.err,results.json,report.txt,status,timing.json,fail} "$results"/console.boot*.log

q() { printf "'%s'" "$(printf %s "$1" | sed "s/'/'\\\\''/g")"; }
{
  echo "LAB_CWD=$(q "$checkout")"
  echo "LAB_TESTFILES=$(q "${testfiles[*]}")"
  if [ -n "${CI+set}" ]; then echo "LAB_CI=$(q "$CI")"; fi
} > "$results/job.env"

boot_timeout=${VFWIRE_LAB_BOOT_TIMEOUT:-120}
timeout=${VFWIRE_LAB_TIMEOUT:-900}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# One boot: QEMU until it exits or a bound passes. Sets boot_ms (to stage 2), outcome
# (boot-timeout, timeout or empty) and qrc.
boot() {
  : > "$results/console.log"
  t0=$(now_ms)
  # -nodefaults: no VGA, NIC, floppy or CD-ROM; the suites build their own netns and veths.
  qemu-system-x86_64 \
    -machine q35,accel=tcg -cpu max -smp 2 -m 1536 \
    -nodefaults -nographic -no-reboot \
    -chardev "file,id=con,path=$results/console.log" -serial chardev:con \
    -kernel "$lab_dir/kernel" -initrd "$lab_dir/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 lab.work=$checkout lab.stage2=$here/stage2.sh${VFWIRE_LAB_APPEND:+ $VFWIRE_LAB_APPEND}" \
    -virtfs local,path=/,mount_tag=labroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$checkout,mount_tag=labwork,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$results,mount_tag=labout,security_model=none,multidevs=remap" ${VFWIRE_LAB_QEMU_EXTRA:-} \
    < /dev/null > /dev/null 2> "$results/qemu.err" &
  qpid=$!
  if [ "$quiet" = 0 ]; then
    tail -n +1 -f --pid="$qpid" "$results/console.log" &
    tpid=$!
  fi
  boot_ms= outcome=
  while kill -0 "$qpid" 2>/dev/null; do
    t=$(now_ms)
    if [ -z "$boot_ms" ] && grep -q '^LAB-STAGE2' "$results/console.log"; then boot_ms=$((t - t0)); fi
    if [ -z "$boot_ms" ] && [ $((t - t0)) -gt $((boot_timeout * 1000)) ]; then outcome=boot-timeout; break; fi
    if [ $((t - t0)) -gt $((timeout * 1000)) ]; then outcome=timeout; break; fi
    sleep 0.1
  done
  if [ -n "$outcome" ]; then
    kill "$qpid" 2>/dev/null || true
  fi
  wait "$qpid" 2>/dev/null && qrc=0 || qrc=$?
  qpid=
  [ -n "$tpid" ] && { wait "$tpid" 2>/dev/null || true; tpid=; }
  [ -n "$boot_ms" ] || { grep -q '^LAB-STAGE2' "$results/console.log" && boot_ms=$(( $(now_ms) - t0 )); } || true
}

# A kernel that dies before stage 2 ran nothing of the checkout: under TCG a boot now and then
# panics in early init (seen on 6.12: RIP sched_clock_cpu in kernel_init; panic=-1 and
# -no-reboot make QEMU exit). Such a boot is tried again, up to VFWIRE_LAB_BOOT_TRIES (default 2)
# in all, its console kept as console.bootN.log; a boot that hung past the boot timeout or
# reached stage 2 never is.
tries=${VFWIRE_LAB_BOOT_TRIES:-2}
attempt=1
while :; do
  boot
  [ -z "$boot_ms" ] && [ -z "$outcome" ] && ! grep -q '^LAB-FAIL ' "$results/console.log" && [ "$attempt" -lt "$tries" ] || break
  cp "$results/console.log" "$results/console.boot$attempt.log"
  say "boot $attempt died before stage 2 (qemu exited $qrc; console ends: $(tr -d '\r' < "$results/console.log" | grep -v '^\s*$' | tail -n 1 | cut -c1-160)); booting again"
  attempt=$((attempt + 1))
done
total_ms=$(( $(now_ms) - t0 ))

secs() { awk -v m="$1" 'BEGIN { printf "%.1f", m / 1000 }'; }
last_line() { tr -d '\r' < "$results/console.log" | grep -v '^\s*$' | tail -n 1 | cut -c1-160; }
status=
[ -s "$results/status" ] && status=$(tr -dc 0-9 < "$results/status")
printf '{"kver":"%s","boot_ms":%s,"total_ms":%s,"status":%s}\n' "$kver" "${boot_ms:-null}" "$total_ms" "${status:-null}" > "$results/timing.json"

case "$outcome" in
  boot-timeout) die 124 "no stage 2 after ${boot_timeout} s, VM killed (console ends: $(last_line))" ;;
  timeout) die 124 "still running after ${timeout} s, VM killed (console ends: $(last_line))" ;;
esac
failed=$(tr -d '\r' < "$results/console.log" | sed -n 's/^LAB-FAIL //p' | head -n 1)
[ -z "$failed" ] || die 125 "$failed"
if [ -z "$status" ]; then
  if [ "$qrc" -ne 0 ] && [ -s "$results/qemu.err" ]; then die 125 "qemu exited with $qrc: $(head -n 1 "$results/qemu.err")"; fi
  die 125 "the VM stopped without a test result (console ends: $(last_line))"
fi
again=
[ "$attempt" -gt 1 ] && again=" (boot $attempt: the earlier died before stage 2)"
say "booted in $(secs "${boot_ms:-0}") s$again, mocha exited $status, $(secs "$total_ms") s in all"
exit "$status"
