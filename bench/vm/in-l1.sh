#!/bin/sh
# bench/vm, the part that runs in L1 (see bench/vm/README.md).  POSIX sh (busybox).
#   in-l1.sh DIR ROOTFS TESTDISK N
# Boots the guest twice against guest-realhost: guest-chan with 0 and with N null round trips
# (nothing else), and reads L1's KVM exit counters (debugfs) around each boot; the difference
# divided by N is the exits per round trip, boot noise cancelled.
set -u
D=$1 ROOT=$2 DISK=$3 N=${4:-4000}
BASE="console=ttyS0 quiet root=/dev/vda ro rootfstype=ext4 init=/sbin/nexus-init panic=-1 reboot=k"
mount -t debugfs none /sys/kernel/debug 2>/dev/null
K=/sys/kernel/debug/kvm
STATS="exits io_exits mmio_exits irq_exits halt_exits irq_injections"
snap() { for s in $STATS; do printf '%s=%s ' "$s" "$(cat $K/$s 2>/dev/null || echo 0)"; done; }
run() {
  c="mount -o ro /dev/vdb /mnt && exec /mnt/guest-chan $1 nop"
  enc=$(echo "$c" | sed 's/%/%25/g; s/ /%20/g')
  timeout 300 "$D/guest-realhost" -- "$D/nexus-vmm" --kernel "$D/vmlinux" --mem 256 --disk "$ROOT,ro" \
    --disk "$DISK,ro" --nexus 3,4,5 --cmdline "$BASE nexus.cmd=\"/bin/sh -c $enc\"" </dev/null >"/tmp/bench-$1.log" 2>&1
}
for n in 0 "$N"; do
  before=$(snap); run "$n"; rc=$?; after=$(snap)
  echo "BENCH n=$n rc=$rc before: $before"
  echo "BENCH n=$n rc=$rc after:  $after"
  grep -a 'null-roundtrip' "/tmp/bench-$n.log" | tr -d '\r' | sed "s/^/BENCH n=$n /"
done
