#!/bin/sh
# Stage 2 of the kernel lab VM: PID 1 after lab/init.sh switched into the overlay of the host's
# root. It runs mocha files of the checkout as root with the project's mocha (one run, so a
# boot and a Node start serve them all), then powers off.
#
# The job comes from /run/lab/job.env, written by lab/run.sh into the results share:
#   LAB_CWD       the checkout (mocha's cwd)
#   LAB_TESTFILES the test files, absolute, space-separated
#   LAB_CI        CI of the caller, when it had one
# and the results go back there: results.json (mocha's JSON reporter), status (mocha's exit
# code), fail (one line, when stage 2 itself failed). The spec reporter's output goes to the
# console, between the "LAB-STAGE2" and "LAB-DONE" lines.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=${TERM:-linux}
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
off() {
  sync
  busybox poweroff -f
  sleep 5
  busybox reboot -f
}
fail() {
  echo "LAB-FAIL $*"
  echo "$*" > /run/lab/fail
  off
}

echo "LAB-STAGE2 uptime_ms=$(ms)"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
echo lab > /proc/sys/kernel/hostname
ip link set lo up || fail "ip link set lo up failed"

[ -r /run/lab/job.env ] || fail "no job.env in the results share"
. /run/lab/job.env
cd "$LAB_CWD" || fail "no checkout at $LAB_CWD"
for f in $LAB_TESTFILES; do [ -f "$f" ] || fail "no test file $f"; done
[ -x node_modules/.bin/mocha ] || fail "no node_modules/.bin/mocha in $LAB_CWD (run npm ci)"
VFWIRE_LAB=$(uname -r)
export VFWIRE_LAB
# Sim guests call the hook's dispatch in-process: a Node start costs seconds under TCG, and the
# hook script itself is the sim tier's to prove (src/sim/guest.ts).
VFWIRE_SIM_HOOK=inprocess
export VFWIRE_SIM_HOOK
if [ -n "${LAB_CI+set}" ]; then CI=$LAB_CI; export CI; fi

# --exit: a suite that leaves a handle open must not keep the VM up until run.sh's timeout.
set -f  # the file list is split at spaces, never globbed
node_modules/.bin/mocha --exit --no-color --reporter "$(dirname "$0")/reporter.cjs" --reporter-option output=/run/lab/results.json \
  $LAB_TESTFILES < /dev/null 2>&1
status=$?
echo "$status" > /run/lab/status
echo "LAB-DONE status=$status uptime_ms=$(ms)"
off
