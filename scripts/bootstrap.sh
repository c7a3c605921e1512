#!/usr/bin/env bash
# Prepares a Debian 12 host (as root) for vfwire's demo and tests: Debian packages, npm
# dependencies, and the libvirt daemons started by hand (no systemd here). Idempotent and quick
# when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap: run as root (network namespaces and libvirt need it)" >&2
  exit 1
fi

# Without systemd no package's service is started by its install (openvswitch-switch's would
# fail on a kernel without the openvswitch module; the lab tier starts its daemons itself), as
# Docker's images already say: a policy-rc.d of our own, for this run only.
policy=/usr/sbin/policy-rc.d
if [ ! -d /run/systemd/system ] && [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# bootstrap.sh: no service starts while it installs packages\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi

# shellcheck source=ensure-packages.sh
. scripts/ensure-packages.sh
ensure_packages bootstrap iproute2 iputils-ping ethtool libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils \
  strongswan-charon strongswan-swanctl libstrongswan-standard-plugins nftables tcpdump iputils-arping systemd openssl iperf3 linux-image-amd64 busybox-static cpio kmod xz-utils zstd \
  openvswitch-switch

# bookworm-backports, on the same mirror the machine's bookworm suite comes from.
ensure_backports() {
  apt-cache policy | grep -q 'bookworm-backports' && return 0
  local uri
  uri=$(awk '/^URIs:/ {u=$2} /^Suites:.*bookworm( |$)/ {print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  echo "deb $uri bookworm-backports main" > /etc/apt/sources.list.d/vfwire-backports.list
  apt-get update -qq
}

# `offload packet` in ip-xfrm needs iproute2 >= 6.2; Debian 12 has 6.1. The IPsec tests check
# vfwire's xfrm commands with bookworm-backports' ip, unpacked beside the system's, not over it.
NEW_IP=/opt/vfwire/iproute2
if [ ! -x "$NEW_IP/bin/ip" ]; then
  ensure_backports
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq iproute2/bookworm-backports 2>/dev/null && dpkg -x iproute2_*.deb x)
  mkdir -p "$NEW_IP/bin" && cp "$tmp/x/bin/ip" "$NEW_IP/bin/ip" && rm -rf "$tmp"
  echo "bootstrap: $("$NEW_IP/bin/ip" -V) in $NEW_IP"
fi

# The kernel lab (lab/) boots bookworm's 6.1 (linux-image-amd64, above) and 6.12 side by side
# (each keeps its /lib/modules/<release>). Debian 12 now carries 6.12 as linux-image-6.12-amd64;
# where the archive does not, bookworm-backports' newest linux-image-6.12.*-amd64.
if ! ls /lib/modules/6.12.*/modules.dep >/dev/null 2>&1; then
  if apt-cache show linux-image-6.12-amd64 >/dev/null 2>&1; then
    k612=linux-image-6.12-amd64
  else
    ensure_backports
    k612=$(apt-cache search --names-only '^linux-image-6\.12\.[^ ]*-amd64$' | awk '{print $1}' | grep -v -e '-cloud-amd64$' -e '-rt-amd64$' | sort -V | tail -n 1)
  fi
  [ -n "$k612" ] || { echo "bootstrap: no Linux 6.12 kernel package in the archive or bookworm-backports" >&2; exit 1; }
  echo "bootstrap: installing $k612 for the kernel lab"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$k612" >/dev/null
fi

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "bootstrap: vfwire needs Node.js 20 or newer on PATH" >&2
  exit 1
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bootstrap: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Debian's udev rule gives /dev/kvm to group kvm; without udev it stays root-only, and libvirt
# (QEMU runs as libvirt-qemu) then re-probes QEMU on every start, taking seconds.
if [ -c /dev/kvm ] && getent group kvm >/dev/null; then chgrp kvm /dev/kvm && chmod 0660 /dev/kvm; fi

# libvirt discovers hooks and probes QEMU when it starts; Debian 12 ships the monolithic daemon.
if ! pgrep -x virtlogd >/dev/null; then virtlogd -d; fi
if ! pgrep -x libvirtd >/dev/null; then
  libvirtd -d
  for _ in $(seq 50); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.2; done
fi
virsh -c qemu:///system version >/dev/null
echo "bootstrap: ready"
