#!/bin/sh
# The unit lines that order host setup after the config's PFs, as systemd names their devices
# (vfwire-host-setup.service must not run before the PFs exist). Shared by install.sh and the
# package's postinst.
#   pf-devices.sh NODE CLI CONFIG EXAMPLE REDO
# Prints one Requires= and one After= line per PF. Prints nothing, with the reason on stderr,
# while CONFIG is still EXAMPLE (its PF is nobody's: waiting for it would hold the boot for
# systemd's device timeout), or when it names no valid PFs; REDO is the command that renders
# them again once the config is edited.
set -eu
node=$1 cli=$2 config=$3 example=$4 redo=$5
if cmp -s "$config" "$example"; then
  echo "host setup is not ordered after any PF device: $config is still the example; edit it, then $redo" >&2
  exit 0
fi
if ! command -v systemd-escape >/dev/null || ! pfs=$("$node" "$cli" --config "$config" config get pfs 2>/dev/null); then
  echo "host setup is not ordered after the PFs' devices (no valid pfs in $config, or no systemd-escape): $redo once the config is edited" >&2
  exit 0
fi
for pf in $pfs; do
  dev=$(systemd-escape --path --suffix=device "/sys/subsystem/net/devices/$pf")
  echo "Requires=$dev"
  echo "After=$dev"
done
