#!/bin/sh
# bench/vm, the part that runs in L1 (see bench/vm/README.md).  POSIX sh (busybox).
#   in-l1.sh DIR ROOTFS TESTDISK N
# Boots the guest twice against guest-realhost: guest-chan with 0 and with N null round trips
# (nothing else), and reads L1's KVM exit counters (debugfs) for each whole boot; the difference
# divided by N is the exits per round trip, boot noise (roughly) cancelled.
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
# KVM's debugfs counters only sum over live VMs: sample while the VM runs (the guest idles 3 s
# after its round trips) and keep the last sample.
for n in 0 "$N"; do
  run "$n" & pid=$!
  last=""
  while kill -0 $pid 2>/dev/null; do
    cur=$(snap); case "$cur" in *"exits=0 "*) ;; *) last=$cur ;; esac; sleep 1
  done
  wait $pid; rc=$?
  echo "BENCH n=$n rc=$rc before: exits=0 io_exits=0 mmio_exits=0 irq_exits=0 halt_exits=0 irq_injections=0"
  echo "BENCH n=$n rc=$rc after:  $last"
  grep -a 'null-roundtrip' "/tmp/bench-$n.log" | tr -d '\r' | sed "s/^/BENCH n=$n /"
done

# The same guest with a virtio-net device on a tap (in a network namespace of its own) instead
# of the Nexus device: a TCP echo server in the guest, tcp-pingpong's client in L1.  Exits are
# read around a second client run, once the guest is up (the first run also waits for boot).
if [ -x "$D/ip" ] && [ -x "$D/tcp-pingpong" ]; then
  unshare -n sh -c '
    D=$1 ROOT=$2 DISK=$3 N=$4 BASE=$5 K=/sys/kernel/debug/kvm
    "$D/ip" link set lo up && "$D/ip" tuntap add tap0 mode tap && "$D/ip" addr add 10.0.2.1/24 dev tap0 &&
      "$D/ip" link set tap0 up || { echo "BENCH tcp setup failed"; exit 1; }
    c="mount -o ro /dev/vdb /mnt && exec /mnt/tcp-pingpong server 7000"
    enc=$(echo "$c" | sed "s/%/%25/g; s/ /%20/g")
    "$D/nexus-vmm" --kernel "$D/vmlinux" --mem 256 --disk "$ROOT,ro" --disk "$DISK,ro" --net tap0 \
      --cmdline "$BASE ip=10.0.2.15::10.0.2.1:255.255.255.0::eth0:off nexus.cmd=\"/bin/sh -c $enc\"" \
      </dev/null >/tmp/bench-tcp-vm.log 2>&1 &
    vmm=$!
    "$D/tcp-pingpong" client 10.0.2.15 7000 200 >/dev/null || { echo "BENCH tcp warm-up failed"; tail -20 /tmp/bench-tcp-vm.log; }
    b=$(cat $K/exits); bi=$(cat $K/io_exits); bm=$(cat $K/mmio_exits); bq=$(cat $K/irq_injections 2>/dev/null || echo 0)
    "$D/tcp-pingpong" client 10.0.2.15 7000 "$N" | sed "s/^/BENCH tcp /"
    a=$(cat $K/exits); ai=$(cat $K/io_exits); am=$(cat $K/mmio_exits); aq=$(cat $K/irq_injections 2>/dev/null || echo 0)
    echo "BENCH tcp n=$N exits=$((a - b)) io_exits=$((ai - bi)) mmio_exits=$((am - bm)) irq_injections=$((aq - bq))"
    kill $vmm; wait $vmm; true
  ' sh "$D" "$ROOT" "$DISK" "$N" "$BASE"
else
  echo "BENCH tcp not run: ip/tcp-pingpong not in L1"
fi
exit 0
