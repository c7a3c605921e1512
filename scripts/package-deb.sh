#!/usr/bin/env bash
# `npm run package`: the Debian package, from the built tree (npm ci && npm run build).
#
#   scripts/package-deb.sh [--version V] [--out DIR]
#
# Writes DIR/vfwire_V_ARCH.deb (DIR: dist/; V: package.json's version). The package holds what
# install.sh installs (installer/program-files.sh), at /usr/lib/vfwire with /usr/bin/vfwire, the
# units in /lib/systemd/system and the config as a 0600 conffile; packaging/deb/postinst renders
# the hook and the PF ordering from the config on the host. ARCH is this machine's: koffi's
# native addon comes from node_modules for this platform only (it needs glibc 2.25: the symbol
# versions objdump -T lists in koffi.node; src/libvirt loads libvirt.so.0 through it).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
version="" out=$src/dist
while [ $# -gt 0 ]; do
  case $1 in
    --version) version=${2:?--version needs a version}; shift ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package-deb.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$version" ] || version=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version)' "$src/package.json")
# Debian's version syntax, upstream part (a leading digit, then these): dpkg-deb would refuse later.
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { echo "package-deb.sh: $version is not a Debian version" >&2; exit 2; }
arch=$(dpkg --print-architecture)
files=$("$src/installer/program-files.sh" "$src" files) || exit 1
deps=$("$src/installer/program-files.sh" "$src" deps) || exit 1

stage=$(mktemp -d)
chmod 755 "$stage"
trap 'rm -rf "$stage"' EXIT
lib=$stage/usr/lib/vfwire
while read -r f; do
  install -D -m "$([ -x "$src/$f" ] || [ "$f" = dist/src/cli.js ] && echo 755 || echo 644)" "$src/$f" "$lib/$f"
done <<< "$files"
while read -r dep; do
  mkdir -p "$(dirname "$lib/$dep")"
  cp -R "$src/$dep" "$lib/$dep"
done <<< "$deps"
# What npm left group-writable or unreadable: a package's files are root's, readable by all.
chmod -R u+rwX,go+rX,go-w "$lib"

install -d -m 755 "$stage/usr/bin"
ln -s ../lib/vfwire/dist/src/cli.js "$stage/usr/bin/vfwire"

# The units as install.sh renders them, for /usr/bin and Debian's node; the PF ordering is
# postinst's drop-in.
for u in vfwire-host-setup.service vfwire-ipsec.service; do
  install -d "$stage/lib/systemd/system"
  sed -e '1s|.*|# part of the vfwire package; postinst orders host setup after the PFs in vfwire-host-setup.service.d/pfs.conf|' \
    -e 's|@VFWIRE@|/usr/bin/vfwire|g' -e 's|@CONFIG@|/etc/vfwire/config.yaml|g' \
    -e 's|@PATH@|/usr/sbin:/usr/bin:/sbin:/bin|g' -e '/^@PF_DEVICES@$/d' \
    "$src/templates/systemd/$u" > "$stage/lib/systemd/system/$u"
  chmod 644 "$stage/lib/systemd/system/$u"
done

install -D -m 600 "$src/templates/config.example.yaml" "$stage/etc/vfwire/config.yaml"
install -D -m 644 "$src/packaging/deb/copyright" "$stage/usr/share/doc/vfwire/copyright"
install -D -m 644 "$src/README.md" "$stage/usr/share/doc/vfwire/README.md"
printf 'vfwire (%s) unstable; urgency=medium\n\n  * Built from the vfwire source tree (npm run package).\n\n -- vfwire developers <dev@vfwire.dev>  %s\n' \
  "$version" "$(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}")" | gzip -9n > "$stage/usr/share/doc/vfwire/changelog.gz"
chmod 644 "$stage/usr/share/doc/vfwire/changelog.gz"
# Directories as a package has them, whatever the umask made them.
find "$stage" -type d -exec chmod 755 {} +

install -d -m 755 "$stage/DEBIAN"
for s in postinst prerm postrm; do install -m 755 "$src/packaging/deb/$s" "$stage/DEBIAN/$s"; done
echo /etc/vfwire/config.yaml > "$stage/DEBIAN/conffiles"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: vfwire
Version: $version
Architecture: $arch
Maintainer: vfwire developers <dev@vfwire.dev>
Installed-Size: $size
Depends: nodejs (>= 20), libvirt-daemon (>= 6.5), libvirt0, libc6 (>= 2.25), iproute2, nftables
Recommends: libvirt-daemon-system, ethtool, iputils-arping
Suggests: strongswan-swanctl, charon-systemd
Section: admin
Priority: optional
Description: SR-IOV VFs on tenant VXLAN overlays for libvirt VMs, with IPsec offload
 A libvirt qemu hook: on virsh start it leases a VF of a ConnectX PF in
 switchdev mode to a VM whose domain XML carries vfwire metadata, puts its
 representor on the VM's VXLAN overlay (encrypted between hosts with xfrm
 IPsec, offloaded to the NIC where it can), attaches the VF, and tears it all
 down when the VM stops. Host setup and the IPsec watch run as systemd units.
CONTROL

mkdir -p "$out"
deb=$out/vfwire_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz -z6 --build "$stage" "$deb" > /dev/null
echo "$deb"
