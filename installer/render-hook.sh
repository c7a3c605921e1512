#!/bin/sh
# Writes the libvirt hook to stdout: hooks/qemu with what it must not look up pinned, since
# libvirt runs hooks with a bare PATH and no vfwire environment. Shared by install.sh and the
# package's postinst.
#   render-hook.sh SHIM BY NODE_DIR PROGRAM CONFIG STATE_DIR
# BY: install.sh or package (the marker that says whose the hook is; each removes only its
# own). STATE_DIR may be empty: then the shim cannot see a VM's leases by itself and starts Node
# for every VM's release, correct and 20x the cost. A warning goes to stderr.
set -eu
shim=$1 by=$2 node_dir=$3 program=$4 config=$5 state_dir=$6
case $by in
  install.sh) marker='# installed by vfwire install.sh' ;;
  package) marker='# installed by the vfwire package' ;;
  *) echo "render-hook.sh: BY is install.sh or package" >&2; exit 2 ;;
esac
# Pins go into the shim unquoted.
for p in "$node_dir" "$program" "$config"; do
  case $p in /*) ;; *) echo "render-hook.sh: $p is not an absolute path" >&2; exit 2 ;; esac
  case $p in *[!A-Za-z0-9_./-]*) echo "render-hook.sh: $p may hold only A-Z a-z 0-9 _ . / -" >&2; exit 2 ;; esac
done
case $state_dir in
  *[!A-Za-z0-9_./-]*)
    echo "the hook cannot pin state_dir $state_dir (only A-Z a-z 0-9 _ . / - go unquoted); it starts Node for every VM's release" >&2
    state_dir= ;;
esac
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
