#!/usr/bin/env bash
# Installs, upgrades or uninstalls vfwire on a libvirt host.
#
#   ./install.sh [--root DIR] [--prefix /usr/local] [--hook-style qemu.d|qemu] [--restart-libvirt]
#                [--systemd auto|yes|no]
#   ./install.sh --uninstall [--root DIR] [--prefix /usr/local]
#
# Installs the built CLI with its production dependencies to PREFIX/lib/vfwire, links
# PREFIX/bin/vfwire, puts the hook in /etc/libvirt/hooks/qemu.d/vfwire (or, for a libvirt
# without qemu.d, /etc/libvirt/hooks/qemu), creates /etc/vfwire/config.yaml (0600) from the
# example if there is none, and /var/lib/vfwire and /var/log/vfwire. A second run changes
# nothing; an existing hook that is not vfwire's is never overwritten. --root DIR installs
# into a tree under DIR (tests, packaging). Where systemd runs (or with --root, or --systemd
# yes) it installs vfwire-host-setup.service and vfwire-ipsec.service to /etc/systemd/system
# and, on a live systemd, enables them (ipsec only when ipsec.mode is not off); without
# systemd it says what to run at boot.
set -euo pipefail

src=$(cd "$(dirname "$0")" && pwd)
root="" prefix=/usr/local action=install hook_style="" restart=0 systemd=auto
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --root) root=${2:?--root needs a directory}; shift ;;
    --prefix) prefix=${2:?--prefix needs a directory}; shift ;;
    --hook-style) hook_style=${2:?--hook-style needs qemu.d or qemu}; shift ;;
    --uninstall) action=uninstall ;;
    --restart-libvirt) restart=1 ;;
    --systemd) systemd=${2:?--systemd needs auto, yes or no}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case $hook_style in ""|qemu.d|qemu) ;; *) echo "install.sh: --hook-style must be qemu.d or qemu" >&2; exit 2 ;; esac
case $systemd in auto|yes|no) ;; *) echo "install.sh: --systemd must be auto, yes or no" >&2; exit 2 ;; esac
# The prefix goes into the hook and the units unquoted.
case $prefix in /*) ;; *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac
case $prefix in *[!A-Za-z0-9_./-]*) echo "install.sh: --prefix may hold only A-Z a-z 0-9 _ . / -" >&2; exit 2 ;; esac
# systemd runs this host; live: and install.sh acts on it (not into --root, not --systemd no).
systemd_runs=0 live_systemd=0
[ -d /run/systemd/system ] && command -v systemctl >/dev/null && systemd_runs=1
[ -z "$root" ] && [ "$systemd_runs" = 1 ] && live_systemd=1
if [ "$systemd" = auto ]; then { [ -n "$root" ] || [ "$live_systemd" = 1 ]; } && systemd=yes || systemd=no; fi
[ "$systemd" = yes ] || live_systemd=0
units=$root/etc/systemd/system
UNITS="vfwire-host-setup.service vfwire-ipsec.service"

lib=$root$prefix/lib/vfwire
bin=$root$prefix/bin/vfwire
hooks=$root/etc/libvirt/hooks
conf=$root/etc/vfwire/config.yaml
marker='# installed by vfwire install.sh'
changed=0
say() { echo "install.sh: $*"; }

# libvirt >= 6.5 runs every executable in hooks/qemu.d/, so vfwire need not own hooks/qemu.
if [ -z "$hook_style" ]; then
  hook_style=qemu.d
  if command -v libvirtd >/dev/null; then
    v=$(libvirtd --version | grep -oE '[0-9]+\.[0-9]+' | head -1)
    [ "$(printf '%s\n6.5\n' "$v" | sort -V | head -1)" = 6.5 ] || hook_style=qemu
  fi
fi
[ "$hook_style" = qemu.d ] && hook=$hooks/qemu.d/vfwire || hook=$hooks/qemu

ours() { [ -f "$1" ] && grep -qF "$marker" "$1"; }
# dpkg's own record of the package (under --root too).
package_installed() { [ -f "$root/var/lib/dpkg/info/vfwire.list" ]; }

# Copy $1 to $2 with mode $3 unless identical; counts changes so a re-run can say "unchanged".
put() {
  if [ -f "$2" ] && cmp -s "$1" "$2" && [ "$(stat -c %a "$2")" = "$3" ]; then return; fi
  install -D -m "$3" "$1" "$2"
  changed=$((changed + 1))
}

install_files() {
  [ -f "$src/dist/src/cli.js" ] || { echo "install.sh: build first (npm ci && npm run build)" >&2; exit 1; }
  node_bin=$(command -v node) || { echo "install.sh: node (20 or newer) is not on PATH" >&2; exit 1; }
  # The package and install.sh would each run a hook and units of the same names.
  if package_installed; then
    echo "install.sh: vfwire's Debian package is installed here: upgrade it with the package (npm run package), or remove it (apt remove vfwire) first" >&2
    exit 1
  fi
  if [ -e "$hook" ] && ! ours "$hook"; then
    echo "install.sh: $hook exists and is not vfwire's; leaving it alone." >&2
    echo "  Move it into $hooks/qemu.d/ (libvirt >= 6.5 runs them all) or call vfwire's hook from it, then re-run." >&2
    exit 1
  fi

  # The hook first: a pin it cannot write stops the install before anything is copied.
  # installer/render-hook.sh pins node, the installed hook, the config and its state directory.
  if [ -e "$conf" ]; then conf_for_pin=$conf; else conf_for_pin=$src/templates/config.example.yaml; fi
  if ! state_dir=$("$node_bin" "$src/dist/src/cli.js" --config "$conf_for_pin" config get state_dir 2>&1); then
    say "the hook cannot pin the state directory: $(printf '%s' "$state_dir" | tail -n 1)"
    say "  until install.sh runs again with a valid config, the hook starts Node for every VM's release"
    state_dir=
  fi
  hook_tmp=$(mktemp)
  trap 'rm -f "$hook_tmp"' EXIT
  rc=0
  warning=$("$src/installer/render-hook.sh" "$src/hooks/qemu" install.sh "$(dirname "$node_bin")" \
    "$prefix/lib/vfwire" /etc/vfwire/config.yaml "$state_dir" "$root" "$hook" 2>&1 > "$hook_tmp") || rc=$?
  case $rc in
    0) [ -z "$warning" ] || say "$warning" ;;
    3) say "$warning"; cp "$hook" "$hook_tmp" ;;
    *) echo "install.sh: $warning" >&2; exit 1 ;;
  esac

  # The program and its production dependencies, as the package ships them (installer/program-files.sh).
  files=$("$src/installer/program-files.sh" "$src" files) || exit 1
  deps=$("$src/installer/program-files.sh" "$src" deps) || exit 1
  while read -r f; do
    put "$src/$f" "$lib/$f" "$([ -x "$src/$f" ] || [ "$f" = dist/src/cli.js ] && echo 755 || echo 644)"
  done <<< "$files"
  while read -r dep; do
    if ! diff -rq "$src/$dep" "$lib/$dep" >/dev/null 2>&1; then
      rm -rf "${lib:?}/$dep"; mkdir -p "$(dirname "$lib/$dep")"; cp -a "$src/$dep" "$lib/$dep"; changed=$((changed + 1))
    fi
  done <<< "$deps"

  mkdir -p "$(dirname "$bin")"
  if [ "$(readlink "$bin" 2>/dev/null)" != "$prefix/lib/vfwire/dist/src/cli.js" ]; then
    ln -sfn "$prefix/lib/vfwire/dist/src/cli.js" "$bin"; changed=$((changed + 1))
  fi

  # Operator files: created once, never overwritten.
  if [ ! -e "$conf" ]; then install -D -m 600 "$src/templates/config.example.yaml" "$conf"; changed=$((changed + 1)); say "wrote $conf from the example: edit it for this host"; fi
  for d in "$root/var/lib/vfwire:700" "$root/var/log/vfwire:750"; do
    [ -d "${d%:*}" ] || { install -d -m "${d##*:}" "${d%:*}"; changed=$((changed + 1)); }
  done

  first_hook=0; [ -e "$hook" ] || first_hook=1
  put "$hook_tmp" "$hook" 755

  install_units

  if [ "$changed" -eq 0 ]; then say "vfwire is installed and unchanged"; return; fi
  say "installed vfwire to $lib, hook $hook"
  if [ "$first_hook" -eq 1 ]; then
    if [ "$restart" -eq 1 ] && [ -z "$root" ]; then restart_libvirt
    else say "libvirt finds hooks only when it starts: restart libvirtd (or re-run with --restart-libvirt)"; fi
  fi
}

# The boot units, with the CLI and config paths, and host setup ordered after the PFs' devices.
install_units() {
  if [ "$systemd" = no ]; then
    say "no systemd here: at boot, before libvirtd, run: vfwire host setup"
    say "  with IPsec on, then: vfwire ipsec up, and keep vfwire ipsec watch running (restart it if it exits)"
    return
  fi
  unit_changed=0 pf_lines=$(mktemp)
  order_note=$("$src/installer/pf-devices.sh" "$node_bin" "$src/dist/src/cli.js" "$conf" "$src/templates/config.example.yaml" \
    "re-run install.sh" 2>&1 > "$pf_lines")
  for u in $UNITS; do
    tmp=$(mktemp)
    # systemd's PATH may lack node's directory (the hook pins it the same way).
    sed -e "s|@VFWIRE@|$prefix/bin/vfwire|g" -e "s|@CONFIG@|/etc/vfwire/config.yaml|g" \
      -e "s|@PATH@|$(dirname "$node_bin"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|g" \
      -e "/^@PF_DEVICES@\$/{r $pf_lines" -e 'd}' "$src/templates/systemd/$u" > "$tmp"
    before=$changed
    put "$tmp" "$units/$u" 644
    rm -f "$tmp"
    [ "$changed" = "$before" ] || unit_changed=1
  done
  rm -f "$pf_lines"
  # Said when the units are written, not at every run that changes nothing.
  [ -z "$order_note" ] || [ "$unit_changed" = 0 ] || say "$order_note"
  [ "$live_systemd" = 1 ] || return 0
  [ "$unit_changed" = 0 ] || systemctl daemon-reload
  # Host setup against the example's PF would fail at every boot.
  enable=vfwire-host-setup.service
  if cmp -s "$conf" "$src/templates/config.example.yaml"; then
    enable=
    say "vfwire-host-setup.service is installed, not enabled: $conf is still the example; edit it, then re-run install.sh"
  fi
  mode=$("$node_bin" "$src/dist/src/cli.js" --config "$conf" config get ipsec.mode 2>/dev/null || echo off)
  [ "$mode" = off ] || enable="$enable vfwire-ipsec.service"
  for u in $enable; do systemctl is-enabled -q "$u" 2>/dev/null || { systemctl enable -q "$u"; say "enabled $u (it runs at the next boot; systemctl start $u to run it now)"; }; done
  if [ "$mode" = off ]; then
    if systemctl is-enabled -q vfwire-ipsec.service 2>/dev/null; then systemctl disable -q vfwire-ipsec.service; say "disabled vfwire-ipsec.service: ipsec.mode is off"
    else say "vfwire-ipsec.service is installed, not enabled: ipsec.mode is off"; fi
  fi
  # A running watch would go on with the code this install replaced.
  [ "$changed" -eq 0 ] || systemctl try-restart vfwire-ipsec.service
}

restart_libvirt() {
  if [ "$systemd_runs" = 1 ]; then systemctl restart libvirtd
  else pkill -x libvirtd || true; sleep 1; libvirtd -d; fi
  say "restarted libvirtd"
}

uninstall_files() {
  # Whichever style it was installed in.
  for h in "$hooks/qemu.d/vfwire" "$hooks/qemu"; do
    if ours "$h"; then rm -f "$h"; say "removed $h"; fi
  done
  # Beside the package, units of the same names are the package's to stop and disable.
  pkg=0; package_installed && pkg=1
  for u in $UNITS; do
    ours "$units/$u" || continue
    [ "$live_systemd" = 0 ] || [ "$pkg" = 1 ] || systemctl disable -q --now "$u" || true
    rm -f "$units/$u"; say "removed $units/$u"
  done
  [ "$live_systemd" = 0 ] || systemctl daemon-reload
  # The hook's compile cache (src/code-cache.ts) is the program's, not state to keep.
  cache_dir=$root/var/lib/vfwire
  if [ -f "$lib/dist/src/cli.js" ] && d=$(node "$lib/dist/src/cli.js" --config "$conf" config get state_dir 2>/dev/null); then cache_dir=$root$d; fi
  rm -rf "$cache_dir/code-cache" "$root/var/lib/vfwire/code-cache"
  if [ "$(readlink "$bin" 2>/dev/null)" = "$prefix/lib/vfwire/dist/src/cli.js" ]; then rm -f "$bin"; fi
  rm -rf "$lib"
  if [ "$pkg" = 1 ]; then
    say "kept /etc/vfwire, /var/lib/vfwire and /var/log/vfwire: vfwire's Debian package uses them; run dpkg-reconfigure vfwire"
    say "uninstalled"
    return
  fi
  # The config is the operator's once edited; an untouched copy of the example goes.
  if [ -f "$conf" ] && cmp -s "$conf" "$src/templates/config.example.yaml"; then rm -f "$conf"; fi
  for d in "$root/etc/vfwire" "$root/var/lib/vfwire" "$root/var/log/vfwire" "$hooks/qemu.d" "$units" "$root/etc/systemd"; do rmdir "$d" 2>/dev/null || true; done
  if [ -e "$conf" ]; then say "kept $conf (edited)"; fi
  if [ -d "$root/var/lib/vfwire" ]; then say "kept $root/var/lib/vfwire (holds the lease ledger)"; fi
  say "uninstalled"
}

if [ "$action" = install ]; then install_files; else uninstall_files; fi
