#!/usr/bin/env bash
# Builds the kernel lab's boot files for one installed Debian kernel: the kernel (a PVH vmlinux
# when it can be extracted) and a small gzip'd cpio initramfs of busybox-static, the modules
# that reach the host's root filesystem (virtio PCI, 9p over virtio, overlayfs) and lab/init.sh
# as /init. Everything else the VM runs (Node, iproute2, the checkout, every other module) comes
# from the host's root, shared read-only over virtio-9p; see lab/README.md.
#
#   lab/build-lab.sh KVER [--cache DIR]    prints the directory holding kernel, initrd.gz, kver
#
# KVER is an installed kernel release (6.1.0-57-amd64) or its leading part (6.1, 6.12): the
# newest installed release that equals it or continues it with '.', '-' or '+' (so 6.1 is never
# 6.12). Its image must be in /boot and its modules in /lib/modules.
#
# Modules are unpacked into the initramfs (6.12 ships them xz-compressed; busybox insmod loads
# only plain .ko files). The kernel: Debian's bzImage carries the vmlinux compressed (6.1 with XZ,
# 6.12 with zstd); QEMU boots the uncompressed ELF through its PVH entry point, skipping the
# real-mode loader and the decompressor, which are slow under TCG (guest/build-guest.sh does the
# same for the e2e guest). When no ELF is found, `kernel` is the bzImage.
#
# Cached: the output directory is named after a hash of this script, init.sh, the kernel release
# and busybox's version; a second run only prints the path. Root only (apt, mknod).
# Errors are one line on stderr starting with "lab: "; exit 3 when the kernel is not installed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
want=${1:-}
cache=${VFWIRE_LAB_CACHE:-/var/cache/vfwire-lab}
if [ "${2:-}" = --cache ]; then cache=$3; fi
fail() { echo "lab: $*" >&2; exit "${code:-1}"; }
[ -n "$want" ] || fail "usage: lab/build-lab.sh KVER [--cache DIR]"
[ "$(id -u)" -eq 0 ] || fail "build-lab.sh must run as root (it installs packages and makes device nodes)"

kver=
for k in $(ls /boot/vmlinuz-* 2>/dev/null | sed 's|^/boot/vmlinuz-||' | sort -V); do
  case "$k" in "$want" | "$want".* | "$want"-* | "$want"+*) ;; *) continue ;; esac
  [ -f "/lib/modules/$k/modules.dep" ] && kver=$k
done
[ -n "$kver" ] || code=3 fail "no kernel $want installed (run scripts/bootstrap.sh)"

# shellcheck source=../scripts/ensure-packages.sh
. "$here/../scripts/ensure-packages.sh"
ensure_packages build-lab busybox-static cpio kmod xz-utils zstd >&2

key=$( { cat "$0" "$here/init.sh"; echo "$kver"; dpkg-query -W -f='${Version}' busybox-static; } | sha256sum | cut -c1-16)
out="$cache/$key"
if [ -s "$out/kernel" ] && [ -s "$out/initrd.gz" ] && [ -s "$out/kver" ]; then
  echo "$out"
  exit 0
fi

echo "build-lab: building the lab for kernel $kver in $out" >&2
mkdir -p "$cache" && chmod 0755 "$cache"
stage=$(mktemp -d "$cache/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
mkdir -p "$root"/{bin,dev,proc,sys,mnt,etc,newroot}
# The kernel opens /dev/console for init's stdio before init can mount devtmpfs.
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3
cp /bin/busybox "$root/bin/busybox"
install -m 0755 "$here/init.sh" "$root/init"

# What reaches the shared root, in dependency order (modprobe --show-depends; built-in ones are
# listed as "builtin" and skipped): virtio over PCI, 9p over virtio, overlayfs.
: > "$root/etc/modules.order"
for m in virtio_pci 9pnet_virtio 9p overlay; do
  modprobe -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}' | while read -r ko; do
    rel=${ko#/lib/modules/$kver/}
    plain=${rel%.xz}; plain=${plain%.zst}; plain=${plain%.gz}
    grep -qx "/lib/modules/$kver/$plain" "$root/etc/modules.order" && continue
    mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
    case "$ko" in
      *.ko.xz) xz -dc "$ko" ;;
      *.ko.zst) zstd -qdc "$ko" ;;
      *.ko.gz) gzip -dc "$ko" ;;
      *) cat "$ko" ;;
    esac > "$root/lib/modules/$kver/$plain"
    echo "/lib/modules/$kver/$plain" >> "$root/etc/modules.order"
  done
done

mkdir -p "$stage/out"
# extract-vmlinux's method: the first compressed stream in the bzImage that unpacks to an ELF file.
bz="/boot/vmlinuz-$kver"
elf() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ]; }
for pos in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bz" | cut -d: -f1); do
  tail -c +$((pos + 1)) "$bz" | xz -dc > "$stage/out/kernel" 2>/dev/null || true
  elf "$stage/out/kernel" && break
  rm -f "$stage/out/kernel"
done
if [ ! -s "$stage/out/kernel" ]; then
  for pos in $(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$bz" | cut -d: -f1); do
    # zstd stops at the end of the frame; the bzImage's trailer after it is ignored.
    tail -c +$((pos + 1)) "$bz" | zstd -qdc > "$stage/out/kernel" 2>/dev/null || true
    elf "$stage/out/kernel" && break
    rm -f "$stage/out/kernel"
  done
fi
if [ ! -s "$stage/out/kernel" ] || ! grep -q '^CONFIG_PVH=y' "/boot/config-$kver"; then
  echo "build-lab: no PVH vmlinux in $bz; the lab boots the bzImage (slower under TCG)" >&2
  cp "$bz" "$stage/out/kernel"
fi
(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) | gzip -9 > "$stage/out/initrd.gz"
echo "$kver" > "$stage/out/kver"
chmod 0755 "$stage/out"
chmod 0644 "$stage/out"/*
rm -rf "$out"
mv "$stage/out" "$out"
# Builds of older inputs go once they have not been used for a day (a run in progress keeps its own).
find "$cache" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9a-f]\{16\}' ! -name "$key" -amin +1440 -exec rm -rf {} + 2>/dev/null || true
echo "build-lab: done: $(du -h "$out/initrd.gz" | cut -f1) initramfs, kernel $(du -h "$out/kernel" | cut -f1)" >&2
echo "$out"
