#!/usr/bin/env bash
# Raw frame round trips on virtio-net with the vnet flat test guest (no TCP/IP stack):
#   1. host -> guest over a tap in a private network namespace (ping from the host),
#      against the host's own loopback ICMP round trip in the same run (the kernel floor);
#   2. guest -> guest over the built-in switch (the guest times its own pings).
# Needs root (a network namespace with a tap) and a build with the guests. Usage:
#   bench/net_latency.sh [BUILD_DIR] [PINGS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
n=${2:-200}
ukvm="$build/vmm/ukvm"
kernel="$build/tests/guests/vnet.elf"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
guest() {  # NAME CMDLINE NET
  printf "name = '%s'\nkernel = '%s'\ncmdline = '%s'\n[console]\ninput = 'none'\n[[net]]\n%s\n" \
    "$1" "$kernel" "$2" "$3" >"$tmp/$1.toml"
}
secs=$((n / 20 + 10))
guest tap "ip=10.9.0.2 time=$secs" "backend = 'tap'
ifname = 'vt0'"
unshare -n bash -c "
  set -e
  ip link set lo up
  ip tuntap add dev vt0 mode tap && ip addr add 10.9.0.1/24 dev vt0 && ip link set vt0 up
  '$ukvm' run '$tmp/tap.toml' >'$tmp/tap.out' 2>&1 &
  sleep 1
  ping -c 3 -q 10.9.0.2 >/dev/null
  echo \"tap:      \$(ping -c $n -i 0.01 -q 10.9.0.2 | tail -1)\"
  echo \"loopback: \$(ping -c $n -i 0.01 -q 127.0.0.1 | tail -1)\"
  kill %1 2>/dev/null || true; wait || true
"
sw="switch_dir = '$tmp/sw'"
guest a "ip=10.9.1.1 time=$secs" "backend = 'switch'
switch = 'bench'
$sw"
guest b "ip=10.9.1.2 ping=10.9.1.1 count=$n interval_ms=100 until_done=1 time=$secs" \
  "backend = 'switch'
switch = 'bench'
$sw"
"$ukvm" run "$tmp/a.toml" >"$tmp/a.out" 2>&1 &
a=$!
sleep 0.5
"$ukvm" run "$tmp/b.toml" >"$tmp/b.out" 2>&1 || true
kill "$a" 2>/dev/null || true
wait "$a" 2>/dev/null || true
echo "switch:   $(grep -E 'ping: [0-9]+ replies|rtt avg' "$tmp/b.out" | tr '\n' ' ')"
