#!/bin/sh
# Writes the libvirt hook to stdout: hooks/qemu with what it must not look up pinned, since
# libvirt runs hooks with a bare PATH and no vfwire environment. Shared by install.sh and the
# package's postinst.
#   render-hook.sh SHIM BY NODE_DIR PROGRAM CONFIG STATE_DIR ROOT CURRENT
# BY: install.sh or package (the marker that says whose the hook is; each removes only its
# own). STATE_DIR may be empty: then the shim cannot see a VM's leases by itself and starts Node
# for every VM's release, correct and 20x the cost. CURRENT: the installed hook, if any (under
# ROOT, the tree being installed into, empty for /). Exit 3, with the reason on stderr: keep
# CURRENT, whose pin names a state directory that still holds VMs' leases (a new pin would
# never see their release). Other warnings go to stderr with exit 0.
set -eu
shim=$1 by=$2 node_dir=$3 program=$4 config=$5 state_dir=$6 root=$7 current=$8
case $by in
  install.sh) marker='# installed by vfwire install.sh' ;;
  package) marker='# installed by the vfwire package' ;;
  *) echo "render-hook.sh: BY is install.sh or package" >&2; exit 2 ;;
esac
# Pins go into the shim unquoted: nothing the shell would split or expand, no ':' (PATH).
unquoted() { case $1 in *[!A-Za-z0-9_./@+,-]*) return 1 ;; esac; }
for p in "$node_dir" "$program" "$config"; do
  case $p in /*) ;; *) echo "render-hook.sh: $p is not an absolute path" >&2; exit 2 ;; esac
  unquoted "$p" || { echo "render-hook.sh: $p may hold only A-Z a-z 0-9 _ . / @ + , -" >&2; exit 2; }
done
if [ -n "$state_dir" ] && ! unquoted "$state_dir"; then
  echo "the hook cannot pin state_dir $state_dir (only A-Z a-z 0-9 _ . / @ + , - go unquoted); it starts Node for every VM's release" >&2
  state_dir=
fi
if [ -f "$current" ]; then
  old=$(sed -n 's/^export VFWIRE_STATE_DIR=//p' "$current")
  if [ -n "$old" ] && [ "$old" != "$state_dir" ] && [ -d "$root$old/vms" ] && [ -n "$(ls -A "$root$old/vms")" ]; then
    echo "the hook keeps looking for leases in $old: VMs hold leases there (state_dir is now ${state_dir:-unreadable}); stop them, then install again" >&2
    exit 3
  fi
fi
path=/usr/sbin:/usr/bin:/sbin:/bin
case :$path: in *:"$node_dir":*) ;; *) path=$node_dir:$path ;; esac
head -1 "$shim"
echo "$marker"
echo "PATH=$path"
echo "VFWIRE_HOOK=$program/dist/bundle/hook-main.js"
echo "export VFWIRE_INSTALLED_BY=$by"
echo "export VFWIRE_CONFIG=$config"
[ -z "$state_dir" ] || echo "export VFWIRE_STATE_DIR=$state_dir"
tail -n +2 "$shim"
