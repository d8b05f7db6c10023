#!/bin/sh
# The tier-2/3 guest checks: boot the real minimal guest (guest/kernel + guest/image)
# under a KVM monitor and check what the guest does.  Runs where /dev/kvm boots Linux:
# inside L1 (rig/run-l1, busybox sh) or directly on a hardware-KVM host.  POSIX sh.
#
# Environment (set by tests/rig/test-rig.sh):
#   GC_DIR      directory with checks.env (the percent-encoded guest commands), scratch space
#   GC_KERNEL   guest kernel (bzImage)       GC_DISK  root filesystem image or block device
#   GC_VMMS     monitors to test, space-separated: "nexus" and/or "qemu"
#   GC_NEXUS_VMM, GC_QEMU  their binaries    GC_IP    iproute2's ip (for ip tuntap)
#   GC_VMM_TIER1  vmm/tests/tier1's runner: its --linux mode is nexus-vmm's snapshot check
#   GC_HTTP_GET the static HTTP client (tests/rig/http-get.c)
#   GC_TIMEOUT  seconds per guest boot (default 90)
#   GC_DISK_COPY=1  copy GC_DISK to a file in /tmp first (a block device in L1 is then
#               seen by the monitor as a plain file, as nexusd will pass it)
# Prints one line per check: "CHECK <monitor>:<name> PASS|FAIL|SKIP <detail>", plus
# "INFO ..." lines with measurements; on a failure, the tail of that guest's console.
set -u
. "$GC_DIR/checks.env"
if [ "${GC_DISK_COPY:-0}" = 1 ] && [ "${1:-}" != netns ]; then
  t0=$(date +%s)
  cat "$GC_DISK" >/tmp/rootfs.ext4 || { echo "CHECK all:disk-copy FAIL cannot copy $GC_DISK"; exit 1; }
  echo "INFO copied $GC_DISK to /tmp/rootfs.ext4 in $(( $(date +%s) - t0 ))s"
fi
[ "${GC_DISK_COPY:-0}" = 1 ] && GC_DISK=/tmp/rootfs.ext4
T=${GC_TIMEOUT:-90}
IP=${GC_IP:-ip}
# quiet: every console byte is an I/O exit, which costs ~0.1 ms in a nested guest.
BASE="console=ttyS0 quiet root=/dev/vda ro rootfstype=ext4 init=/sbin/nexus-init panic=-1 reboot=k"

check() { echo "CHECK $1 $2 $3"; }
show_log() { echo "---- last lines of $1 ----"; tail -n 30 "$1" | tr -d '\r' | sed 's/^/  | /'; echo "----"; }
now_ms() { read -r up _ </proc/uptime; echo "$up" | awk '{printf "%d", $1 * 1000}'; }

# run_vm MONITOR LOG VCPUS TAP CMDLINE: boots the guest, console to LOG; returns the guest's
# exit port value (QEMU's isa-debug-exit status (V<<1)|1 is decoded), or >=64 for the monitor.
run_vm() {
  mon=$1 log=$2 cpus=$3 tap=$4 cl="$BASE $5"
  case "$mon" in
    nexus)
      set -- "$GC_NEXUS_VMM" --kernel "$GC_KERNEL" --mem 256 --vcpus "$cpus" --disk "$GC_DISK,ro" \
             --serial stdout --cmdline "$cl"
      [ -n "$tap" ] && set -- "$@" --net "$tap"
      timeout "$T" "$@" </dev/null >"$log" 2>&1
      return $? ;;
    qemu)
      set -- "$GC_QEMU" -L "${GC_QEMU_DATA:-/usr/share/qemu}" -M microvm,acpi=off,x-option-roms=off -accel kvm -cpu host -m 256 -smp "$cpus" \
             -nodefaults -no-user-config -display none -monitor none -no-reboot -serial stdio \
             -kernel "$GC_KERNEL" -append "$cl" \
             -drive "id=root,file=$GC_DISK,format=raw,if=none,readonly=on" -device virtio-blk-device,drive=root \
             -device isa-debug-exit,iobase=0x501,iosize=1
      [ -n "$tap" ] && set -- "$@" -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" \
             -device virtio-net-device,netdev=n0
      timeout "$T" "$@" </dev/null >"$log" 2>&1
      rc=$?
      [ $rc -eq 124 ] && return 124
      # isa-debug-exit makes QEMU exit (V<<1)|1, but QEMU's own errors exit 1 as well:
      # those print "qemu..." on stderr (in LOG), a guest exit does not.
      if [ $((rc & 1)) -eq 1 ] && ! grep -qa '^qemu' "$log"; then return $((rc >> 1)); fi
      return $((rc + 64)) ;;   # QEMU's own status: not from the guest
  esac
}

# boot MONITOR LOG VCPUS TAP CMDLINE: run_vm, except that in the nested rig (GC_RETRY_CRASH=1,
# set by test-rig.sh for tier 2) a guest that crashed — 66 triple fault, 67 kernel panic — is
# booted once more and the second boot's status counts.  A 2-vCPU guest has crashed in the rig
# about once in 250 boots, cause open (docs/vmm.md, "Guest crashes in the rig"); the crashed
# boot's console and registers are printed on a "RETRY" line's heels, which test-rig.sh counts
# into the suite's summary.  On hardware KVM (tier 3) a crash is a failure.
boot() {
  run_vm "$@"; b_rc=$?
  if [ "${GC_RETRY_CRASH:-0}" = 1 ] && { [ $b_rc -eq 66 ] || [ $b_rc -eq 67 ]; }; then
    echo "RETRY $1: $(basename "$2" .log): guest crashed (status $b_rc) in the nested rig; booting it once more"
    show_log "$2"
    cp "$2" "$2.crashed"
    run_vm "$@"; b_rc=$?
  fi
  return $b_rc
}

# expect MON NAME WANT_STATUS GOT_STATUS LOG: one CHECK line for an exit status.
expect_status() {
  if [ "$4" -eq "$3" ]; then check "$1:$2" PASS "exit status $4"
  else check "$1:$2" FAIL "exit status $4, expected $3"; show_log "$5"; fi
}

# Second entry point: `guest-checks.sh netns MON DIR`, run under `unshare -n`.
if [ "${1:-}" = netns ]; then
  mon=$2 d=$3
  "$IP" tuntap add dev nxtap0 mode tap || { echo "0 90" >"$d/net.result"; exit 0; }
  "$IP" addr add 10.77.0.1/24 dev nxtap0 && "$IP" link set nxtap0 up && "$IP" link set lo up \
    || { echo "0 91" >"$d/net.result"; exit 0; }
  echo "namespace has $("$IP" -o -4 addr show dev nxtap0 | awk '{print $4}') on nxtap0" >"$d/net.ns"
  run_vm "$mon" "$d/net.log" 1 nxtap0 "ip=10.77.0.2::10.77.0.1:255.255.255.0::eth0:off nexus.cmd=\"$CMD_HTTP\"" &
  vm=$!
  ok=0 i=0
  while [ $i -lt "$T" ]; do
    if "$GC_HTTP_GET" 10.77.0.2 8080 / 3 >"$d/net.body" 2>"$d/net.err"; then ok=1; break; fi
    kill -0 $vm 2>/dev/null || break
    sleep 1; i=$((i + 1))
  done
  wait $vm; rc=$?
  echo "$ok $rc" >"$d/net.result"
  { echo "last client error: $(cat "$d/net.err" 2>/dev/null)"; "$IP" -s link show nxtap0; } >>"$d/net.ns" 2>&1
  exit 0
fi

for mon in $GC_VMMS; do
  d=$GC_DIR/$mon; mkdir -p "$d"
  echo "INFO $mon: booting the guest ($(basename "$GC_KERNEL"), root $GC_DISK)"

  # 1. Boot to init, root filesystem from virtio-blk, python prints the marker, exit 0.
  t0=$(now_ms)
  boot "$mon" "$d/marker.log" 1 "" "nexus.cmd=\"$CMD_MARKER\""; rc=$?
  t1=$(now_ms)
  tr -d '\r' <"$d/marker.log" >"$d/marker.txt"
  init_at=$(sed -n 's/.*nexus-init: started at \([0-9.]*\) s uptime.*/\1/p' "$d/marker.txt" | head -n 1)
  echo "INFO $mon: guest boot-to-init ${init_at:-?} s (guest uptime); whole run $((t1 - t0)) ms wall"
  if [ -n "$init_at" ]; then check "$mon:boot-to-init" PASS "init started at ${init_at}s uptime"
  else
    check "$mon:boot-to-init" FAIL "no 'nexus-init: started' line on the console (status $rc)"; show_log "$d/marker.log"
    for c in rootfs-virtio-blk python-marker poweroff-exit-0 exit-status-42 missing-command-58 smp-2-vcpus virtio-net-http; do
      check "$mon:$c" FAIL "not run: the guest did not reach init"
    done
    continue
  fi
  if grep -q '^/dev/root / ext4 ro' "$d/marker.txt" || grep -q '^/dev/vda / ext4 ro' "$d/marker.txt"; then
    check "$mon:rootfs-virtio-blk" PASS "/ is ext4, read-only, from the virtio-blk disk"
  else check "$mon:rootfs-virtio-blk" FAIL "no read-only ext4 root in /proc/mounts"; fi
  if grep -qx 'nexus-rig-marker' "$d/marker.txt"; then check "$mon:python-marker" PASS "/usr/bin/python3 -c printed the marker"
  else check "$mon:python-marker" FAIL "marker not printed"; fi
  expect_status "$mon" poweroff-exit-0 0 $rc "$d/marker.log"

  # 2. The command's exit status comes back through the exit port; failures are distinct.
  boot "$mon" "$d/status.log" 1 "" "nexus.cmd=\"$CMD_EXIT42\" nexus.quiet=1"; rc=$?
  expect_status "$mon" exit-status-42 42 $rc "$d/status.log"
  boot "$mon" "$d/missing.log" 1 "" "nexus.cmd=/nonexistent/command"; rc=$?
  expect_status "$mon" missing-command-58 58 $rc "$d/missing.log"

  # 3. Two vCPUs (MP table, SMP bring-up) visible to the guest.
  boot "$mon" "$d/smp.log" 2 "" "nexus.cmd=\"$CMD_CPUS\""; rc=$?
  if [ $rc -eq 0 ] && tr -d '\r' <"$d/smp.log" | grep -qx 'cpus=2'; then check "$mon:smp-2-vcpus" PASS "guest sees 2 CPUs"
  else check "$mon:smp-2-vcpus" FAIL "status $rc, $(tr -d '\r' <"$d/smp.log" | grep '^cpus=' || echo 'no cpus= line')"; show_log "$d/smp.log"; fi

  # 4. virtio-net: a tap in a network namespace made here; HTTP from this side to a server
  #    in the guest, which answers one request and exits 0.  (This script again, inside.)
  rm -f "$d/net.result" "$d/net.body"
  unshare -n sh "$0" netns "$mon" "$d"
  read -r ok rc <"$d/net.result" 2>/dev/null || { ok=0; rc=99; }
  body=$(cat "$d/net.body" 2>/dev/null)
  if [ "$ok" = 1 ] && [ "$body" = nexus-rig-http-ok ] && [ "$rc" = 0 ]; then
    check "$mon:virtio-net-http" PASS "HTTP GET from the namespace to the guest answered; guest exit 0"
  else
    check "$mon:virtio-net-http" FAIL "request ok=$ok body='$body' guest status=$rc"
    sed 's/^/  net| /' "$d/net.ns" 2>/dev/null
    show_log "$d/net.log"
  fi

  # 5. nexus-vmm only: snapshot, kill, restore (counter, clock, virtio-blk, working set).
  if [ "$mon" = nexus ] && [ -n "${GC_VMM_TIER1:-}" ]; then
    "$GC_VMM_TIER1" --linux "$GC_NEXUS_VMM" "$GC_KERNEL" "$GC_DISK" "$d/snap" || show_log "$d/snap/lx-clone.txt"
  fi
done
