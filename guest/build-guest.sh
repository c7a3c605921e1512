#!/usr/bin/env bash
# Builds the test guest that test/e2e/guests.test.ts boots: Debian's kernel (linux-image-amd64)
# and a small gzip'd cpio initramfs of busybox-static, iputils' ping (busybox ping cannot set DF),
# the few kernel modules the hot-plugged virtio NIC and the ACPI power button need, and
# guest/init.sh as /init. Nothing is downloaded but Debian packages.
#
#   guest/build-guest.sh [--cache DIR]    prints the directory holding `kernel` and `initrd.gz`
#
# `kernel` is the uncompressed vmlinux taken out of Debian's bzImage: QEMU boots it through its
# PVH entry point (Debian builds CONFIG_PVH=y), skipping SeaBIOS' real-mode kernel loader and
# the XZ decompressor, which under TCG take longer than the whole rest of the boot (10 s -> 5 s
# to init's power-off here). When that extraction fails, `kernel` is the bzImage itself.
#
# Idempotent and cached: the output directory is named after a hash of this script, init.sh,
# the kernel and busybox versions, so a second run only prints the path, and a change to any
# input builds a new guest beside the old one. Root only (apt, mknod).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${VFWIRE_GUEST_CACHE:-/var/cache/vfwire-test-guest}
if [ "${1:-}" = --cache ]; then cache=$2; fi
log() { echo "build-guest: $*" >&2; }

# shellcheck source=../scripts/ensure-packages.sh
. "$here/../scripts/ensure-packages.sh"
ensure_packages build-guest linux-image-amd64 busybox-static cpio kmod iputils-ping xz-utils

# Debian's kernel: the release linux-image-amd64 depends on (bookworm's 6.1). scripts/bootstrap.sh
# also installs 6.12 for the kernel lab (lab/); this guest does not take it, whose modules are
# xz-compressed (busybox insmod loads plain .ko only) and whose bzImage is zstd, not XZ.
# Without the meta-package: the newest kernel whose modules are installed (the host's own may have none).
kver=
meta=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null | sed -n 's/^linux-image-\([^ ,]*\).*/\1/p')
if [ -n "$meta" ] && [ -f "/boot/vmlinuz-$meta" ] && [ -f "/lib/modules/$meta/modules.dep" ]; then
  kver=$meta
else
  for k in $(ls /boot/vmlinuz-* 2>/dev/null | sed 's|^/boot/vmlinuz-||' | sort -V); do
    [ -f "/lib/modules/$k/modules.dep" ] && kver=$k
  done
fi
[ -n "$kver" ] || { log "no /boot/vmlinuz-* with /lib/modules (is linux-image-amd64 installed?)"; exit 1; }

key=$( { cat "$0" "$here/init.sh"; echo "$kver"; dpkg-query -W -f='${Version}' busybox-static iputils-ping; } | sha256sum | cut -c1-16)
out="$cache/$key"
if [ -s "$out/kernel" ] && [ -s "$out/initrd.gz" ]; then
  echo "$out"
  exit 0
fi

log "building the guest for kernel $kver in $out"
mkdir -p "$cache" && chmod 0755 "$cache"
stage=$(mktemp -d "$cache/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,etc,lib/x86_64-linux-gnu,lib64}
# The kernel opens /dev/console for init's stdio before init can mount devtmpfs.
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3

cp /bin/busybox "$root/bin/busybox"
install -m 0755 "$here/init.sh" "$root/init"

# iputils ping (-M do) and the shared libraries it loads, at the paths ldd names.
cp /bin/ping "$root/usr/bin/iping"
for lib in $(ldd /bin/ping | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

# Modules in dependency order (modprobe --show-depends), loaded by init with insmod:
#   virtio_pci + virtio_net: the NIC vfwire hot-plugs (virtio-net over PCI, with net_failover);
#   button + evdev: the ACPI power button as /dev/input/eventN, for `virsh shutdown`.
# Built in (=y) on Debian's 6.1 kernel, so not needed: ACPI PCI hotplug (acpiphp), 8250 serial,
# devtmpfs, packet and unix sockets.
: > "$root/etc/modules.order"
for m in virtio_pci virtio_net button evdev; do
  modprobe -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}' | while read -r ko; do
    rel=${ko#/lib/modules/$kver/}
    grep -qx "/lib/modules/$kver/$rel" "$root/etc/modules.order" && continue
    mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
    cp "$ko" "$root/lib/modules/$kver/$rel"
    echo "/lib/modules/$kver/$rel" >> "$root/etc/modules.order"
  done
done

mkdir -p "$stage/out"
# extract-vmlinux's method: the first XZ stream in the bzImage that unpacks to an ELF file.
bz="/boot/vmlinuz-$kver"
for pos in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bz" | cut -d: -f1); do
  tail -c +$((pos + 1)) "$bz" | xz -dc > "$stage/out/kernel" 2>/dev/null || true
  [ "$(head -c 4 "$stage/out/kernel" | od -An -c | tr -d ' ')" = '177ELF' ] && break
  rm -f "$stage/out/kernel"
done
if [ ! -s "$stage/out/kernel" ] || ! grep -q '^CONFIG_PVH=y' "/boot/config-$kver"; then
  log "no PVH vmlinux in $bz; the guest boots the bzImage (slower under TCG)"
  cp "$bz" "$stage/out/kernel"
fi
(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) | gzip -9 > "$stage/out/initrd.gz"
# QEMU runs as libvirt-qemu: the files must be readable by it.
chmod 0755 "$stage/out"
chmod 0644 "$stage/out/kernel" "$stage/out/initrd.gz"
rm -rf "$out"
mv "$stage/out" "$out"
# Builds of older inputs go once they have not been used for a day (a run in progress keeps its own).
find "$cache" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9a-f]\{16\}' ! -name "$key" -amin +1440 -exec rm -rf {} + 2>/dev/null || true
log "done: $(du -h "$out/initrd.gz" | cut -f1) initramfs"
echo "$out"
