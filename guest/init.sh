#!/bin/busybox sh
# /init of vfwire's test guest (busybox, PID 1). It waits for the NIC that vfwire's attach worker
# hot-plugs after boot, configures it from the kernel command line, checks traffic, and reports
# on the console (ttyS0) in lines starting with "VFW-", one fact per key=value:
#
#   VFW-BOOT t_ms=<ms since boot>
#   VFW-NIC nic=<name> mac=<mac> mtu=<mtu the NIC came with> t_nic_ms=<ms since boot>
#   VFW-DF peer=<ip> size=<ICMP payload> result=ok|fail          (ping -M do, once each size)
#   VFW-RESULT nic=.. mac=.. mtu=.. t_nic_ms=.. ping=ok|fail t_peer_ms=..|-
#   VFW-PING round=<n> peer=<ip> result=ok|fail                 (every peer, every round)
#   VFW-ROUNDS-DONE
#   VFW-NIC-GONE nic=<name> t_ms=..                            (the NIC was unplugged)
#   VFW-POWEROFF reason=acpi|done
#
# Kernel command line (all optional but vfw.ip):
#   vfw.ip=198.19.100.1/24      address of the NIC
#   vfw.peers=A,B,...           addresses to ping; the first is "the" peer of VFW-RESULT and VFW-DF
#   vfw.mtu=9000                set the NIC's MTU (default: keep what virtio's host_mtu gave)
#   vfw.wait=30                 seconds to wait for the first peer to answer
#   vfw.dfsize=8972             DF ping at this payload size and one byte more
#   vfw.rounds=30               ping rounds after the result, one a second (keeps the guest
#                               pinging while the test looks at the other side)
#   vfw.nicwait=120             seconds to wait for the NIC
#   vfw.poweroff=1              power off when the rounds are done (default: idle)
#
# `virsh shutdown` presses the ACPI power button: the kernel's button driver turns it into a
# key event on the "Power Button" input device, and a watcher reading that device powers off.
# (Busybox acpid would do the same from /dev/input/event*, but needs a map and action files; one
# blocking read is all this guest needs.)

/bin/busybox mkdir -p /proc /sys /dev /run /tmp /sbin /usr/bin /usr/sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin

ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
say() { echo "$*"; }

say "VFW-BOOT t_ms=$(ms)"
ip link set lo up

ip_addr= peers= mtu= wait_s=30 dfsize= rounds=30 nicwait=120 poff=0
for w in $(cat /proc/cmdline); do
  case "$w" in
    vfw.ip=*) ip_addr=${w#*=} ;;
    vfw.peers=*) peers=$(echo "${w#*=}" | tr ',' ' ') ;;
    vfw.mtu=*) mtu=${w#*=} ;;
    vfw.wait=*) wait_s=${w#*=} ;;
    vfw.dfsize=*) dfsize=${w#*=} ;;
    vfw.rounds=*) rounds=${w#*=} ;;
    vfw.nicwait=*) nicwait=${w#*=} ;;
    vfw.poweroff=*) poff=${w#*=} ;;
  esac
done

while read -r ko; do insmod "$ko" || say "VFW-WARN insmod $ko failed"; done < /etc/modules.order

power_off() {
  say "VFW-POWEROFF reason=$1"
  sync
  poweroff -f
}

# The power button: any event on its input device means "shut down".
for n in /sys/class/input/event*; do
  [ -e "$n/device/name" ] || continue
  case "$(cat "$n/device/name")" in
    *"Power Button"*) ( head -c 1 "/dev/input/${n##*/}" > /dev/null && power_off acpi ) & ;;
  esac
done

# The NIC: the first netdev backed by a device (lo and tunnels have none).
find_nic() {
  for d in /sys/class/net/*; do
    [ -e "$d/device" ] && { echo "${d##*/}"; return 0; }
  done
  return 1
}
end=$(( $(ms) + nicwait * 1000 ))
nic=
while [ "$(ms)" -lt "$end" ]; do
  nic=$(find_nic) && break
  sleep 0.05
done
if [ -z "$nic" ]; then
  say "VFW-RESULT nic=none"
  [ "$poff" = 1 ] && power_off done
  while :; do sleep 3600; done
fi
t_nic=$(ms)
mac=$(cat "/sys/class/net/$nic/address")
say "VFW-NIC nic=$nic mac=$mac mtu=$(cat "/sys/class/net/$nic/mtu") t_nic_ms=$t_nic"

[ -n "$mtu" ] && ip link set dev "$nic" mtu "$mtu"
[ -n "$ip_addr" ] && ip addr add "$ip_addr" dev "$nic"
ip link set dev "$nic" up

# Acknowledge an unplug (virsh detach-device): the kernel removes the netdev when it ejects it.
( while [ -e "/sys/class/net/$nic" ]; do sleep 0.2; done; say "VFW-NIC-GONE nic=$nic t_ms=$(ms)" ) &

ping1() { iping -n -q -c 1 -W 1 "$@" > /dev/null 2>&1; }

peer=${peers%% *}
result=fail t_peer=-
if [ -n "$peer" ]; then
  end=$(( $(ms) + wait_s * 1000 ))
  while :; do
    if ping1 "$peer"; then result=ok t_peer=$(ms); break; fi
    [ "$(ms)" -lt "$end" ] || break
  done
  if [ -n "$dfsize" ]; then
    for s in "$dfsize" $((dfsize + 1)); do
      r=fail; iping -n -q -c 1 -W 2 -M do -s "$s" "$peer" > /dev/null 2>&1 && r=ok
      say "VFW-DF peer=$peer size=$s result=$r"
    done
  fi
fi
say "VFW-RESULT nic=$nic mac=$mac mtu=$(cat "/sys/class/net/$nic/mtu") t_nic_ms=$t_nic ping=$result t_peer_ms=$t_peer"

i=1
while [ "$i" -le "$rounds" ]; do
  for p in $peers; do
    r=fail; ping1 "$p" && r=ok
    say "VFW-PING round=$i peer=$p result=$r"
  done
  i=$((i + 1))
  sleep 1
done
say "VFW-ROUNDS-DONE"

[ "$poff" = 1 ] && power_off done
while :; do sleep 3600; done
