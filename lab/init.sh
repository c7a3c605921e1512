#!/bin/busybox sh
# /init of the kernel lab's initramfs (busybox, PID 1). It loads the modules build-lab.sh put in
# the initramfs, mounts the host's root filesystem (virtio-9p, read-only) as the lower layer of
# an overlay whose upper layer is a tmpfs, puts fresh tmpfs on /run and /tmp, the checkout (its
# own read-only share, under an overlay too, so a checkout in /tmp is there as well) at its host
# path and the results share on /run/lab, and switch_roots into the overlay to run the checkout's
# lab/stage2.sh as PID 1. Nothing the VM writes reaches the host's disk but the results share.
#
# Kernel command line (run.sh sets it):
#   lab.stage2=PATH   the stage-2 script, a path in the checkout (required)
#   lab.work=PATH     the checkout's path on the host (required), shared as tag labwork
#   lab.root=TAG      mount tag of the root share (default labroot)
#   lab.out=TAG       mount tag of the writable results share (default labout)
#   lab.msize=N       9p msize (default 262144)
#
# Console lines: "LAB-INIT uptime_ms=N" once, and on failure one "LAB-FAIL <what failed>: <why>"
# before powering off (run.sh reports that line).

/bin/busybox mkdir -p /proc /sys /dev
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
export PATH=/bin

ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
fail() {
  echo "LAB-FAIL $*"
  sync
  poweroff -f
  sleep 5
  reboot -f
}

echo "LAB-INIT uptime_ms=$(ms)"

stage2= work= root_tag=labroot out_tag=labout msize=262144
for w in $(cat /proc/cmdline); do
  case "$w" in
    lab.stage2=*) stage2=${w#*=} ;;
    lab.work=*) work=${w#*=} ;;
    lab.root=*) root_tag=${w#*=} ;;
    lab.out=*) out_tag=${w#*=} ;;
    lab.msize=*) msize=${w#*=} ;;
  esac
done
[ -n "$stage2" ] && [ -n "$work" ] || fail "no lab.stage2= or lab.work= on the kernel command line"

while read -r ko; do
  err=$(insmod "$ko" 2>&1) || fail "insmod ${ko##*/} failed: $err"
done < /etc/modules.order

mkdir -p /mnt/lower /mnt/rw
# cache=loose: the lower layers are read-only for the VM's life, so the guest may cache them freely.
ro9p="ro,trans=virtio,version=9p2000.L,msize=$msize,cache=loose"
err=$(mount -t 9p -o "$ro9p" "$root_tag" /mnt/lower 2>&1) || fail "9p mount of the root share ($root_tag) failed: $err"
err=$(mount -t tmpfs -o mode=0755 lab-rw /mnt/rw 2>&1) || fail "tmpfs for the overlays failed: $err"
mkdir -p /mnt/rw/upper /mnt/rw/work /mnt/rw/wupper /mnt/rw/wwork /mnt/work
err=$(mount -t overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work lab-root /newroot 2>&1) \
  || fail "overlay mount failed: $err"

# Fresh /run and /tmp: the host's own (its sockets, pid files, other runs' files) stay out of sight.
err=$(mount -t tmpfs -o mode=0755,nosuid,nodev lab-run /newroot/run 2>&1) || fail "tmpfs on /run failed: $err"
err=$(mount -t tmpfs -o mode=1777,nosuid,nodev lab-tmp /newroot/tmp 2>&1) || fail "tmpfs on /tmp failed: $err"
mkdir -p /newroot/run/lab
err=$(mount -t 9p -o "trans=virtio,version=9p2000.L,msize=$msize,cache=none" "$out_tag" /newroot/run/lab 2>&1) \
  || fail "9p mount of the results share ($out_tag) failed: $err"
err=$(mount -t 9p -o "$ro9p" labwork /mnt/work 2>&1) || fail "9p mount of the checkout share (labwork) failed: $err"
mkdir -p "/newroot$work"
err=$(mount -t overlay -o lowerdir=/mnt/work,upperdir=/mnt/rw/wupper,workdir=/mnt/rw/wwork lab-work "/newroot$work" 2>&1) \
  || fail "overlay mount of the checkout on $work failed: $err"
for d in proc sys dev; do
  err=$(mount --move "/$d" "/newroot/$d" 2>&1) || fail "moving /$d into the new root failed: $err"
done
[ -f "/newroot$stage2" ] || fail "no stage-2 script $stage2 in the checkout"

exec switch_root /newroot /bin/sh "$stage2"
