#!/bin/sh
# The microVM part of `make test-vm`: runs where /dev/kvm boots Linux guests (inside L1
# of rig/run-l1, busybox sh, or directly on a hardware-KVM host).  POSIX sh.
#
#   in-l1.sh DIR ROOTFS TESTDISK        DIR holds nexus-vmm, vmlinux, guest-realhost
#
# Each case boots the real guest kernel with the Nexus device, the guest's read-only root
# image and the test disk (guest-chan, guest-hostile), with guest-realhost (nexusd's real
# chan.c + an in-memory S3) as the host peer that hands its region and eventfds to
# nexus-vmm (--nexus 3,4,5).  Prints "RESULT pass|fail NAME detail" lines.
set -u
D=$1 ROOT=$2 DISK=$3
T=${VMTEST_TIMEOUT:-240}
BASE="console=ttyS0 quiet root=/dev/vda ro rootfstype=ext4 init=/sbin/nexus-init panic=-1 reboot=k"
result() { echo "RESULT $1 $2 $3"; }
show() { echo "---- $1 ----"; tail -n "${2:-40}" "$1" | tr -d '\r' | sed 's/^/  | /'; echo "----"; }

# guest_cmd PROG ARGS...: nexus.cmd mounting the test disk at /mnt, percent-encoded.
guest_cmd() {
  c="mount -o ro /dev/vdb /mnt && exec /mnt/$*"
  echo "nexus.cmd=\"/bin/sh -c $(echo "$c" | sed 's/%/%25/g; s/ /%20/g')\""
}

# vm LOG ARGS-FOR-REALHOST -- GUEST-PROGRAM...: one instance; returns realhost's status.
vm() {
  log=$1; shift
  rh=""
  while [ "$1" != "--" ]; do rh="$rh $1"; shift; done
  shift
  # shellcheck disable=SC2086
  timeout "$T" "$D/guest-realhost" $rh -- "$D/nexus-vmm" --kernel "$D/vmlinux" --mem 256 \
      --disk "$ROOT,ro" --disk "$DISK,ro" --nexus 3,4,5 --serial stdout \
      --cmdline "$BASE ${GUEST_ENV:-} $(guest_cmd "$@")" </dev/null >"$log" 2>&1
}

# 1. The channel from a C guest program over /dev/nexus: device, null round trips, PUT/GET
#    1 MiB and 10 MiB, allow-list, no network interface.
t0=$(date +%s)
vm /tmp/chan.log --buckets vmtest -- guest-chan 2000
rc=$?
echo "INFO chan case: realhost exit $rc after $(( $(date +%s) - t0 ))s"
grep -a '^vmtest: \(ok\|FAIL\) ' /tmp/chan.log | tr -d '\r' | while read -r _ st name rest; do
  [ "$st" = ok ] && result pass "chan:$name" "$rest" || result fail "chan:$name" "$rest"
done
grep -aq '^vmtest: ok null-roundtrip' /tmp/chan.log || result fail chan:null-roundtrip "no result line from the guest"
if [ $rc -eq 0 ] && grep -aq '^vmtest: done, 0 failures' /tmp/chan.log; then
  result pass chan:exit "guest program and host peer exited 0"
else
  result fail chan:exit "realhost exit $rc"; show /tmp/chan.log 60
fi

# 1b. The interrupt path: the same program with spinning off, so that every wait sleeps on
#     /dev/nexus and is woken by the host's irqfd (and every kick is a doorbell ioeventfd).
t0=$(date +%s)
GUEST_ENV="nexus.env=NEXUS_SPIN_US=0"
vm /tmp/chan-sleep.log --buckets vmtest -- guest-chan 400
rc=$?
GUEST_ENV=
echo "INFO chan-sleep case: realhost exit $rc after $(( $(date +%s) - t0 ))s"
for name in null-roundtrip interrupts put get; do
  l=$(grep -a "^vmtest: [a-zA-Z]* $name " /tmp/chan-sleep.log | tr -d '\r' | head -1)
  case "$l" in "vmtest: ok "*) result pass "chan-sleep:$name" "${l#vmtest: ok $name }" ;;
    *) result fail "chan-sleep:$name" "${l:-no result line}" ;; esac
done
[ $rc -eq 0 ] || { result fail chan-sleep:exit "realhost exit $rc"; show /tmp/chan-sleep.log 40; }

# 2. A hostile guest: the host peer must report a protocol violation and stop the VM
#    (realhost SIGKILLs nexus-vmm and exits 1), and must not crash itself.
t0=$(date +%s)
vm /tmp/hostile.log -- guest-hostile
rc=$?
echo "INFO hostile case: realhost exit $rc after $(( $(date +%s) - t0 ))s"
if grep -aq 'hostile: region .* mapped; attacking' /tmp/hostile.log &&
   grep -aq 'realhost: protocol violation' /tmp/hostile.log &&
   ! grep -aq 'attack finished and still running' /tmp/hostile.log && [ $rc -eq 1 ]; then
  result pass hostile:stopped "$(grep -a 'protocol violation' /tmp/hostile.log | head -1 | tr -d '\r')"
else
  result fail hostile:stopped "realhost exit $rc (want 1 after a reported violation)"; show /tmp/hostile.log 40
fi

# 3. Isolation: two instances at once, each with its own host peer and region, each fills
#    its region with its own token and must find no trace of the other's.
vm /tmp/iso-a.log -- guest-isolation alpha &
a=$!
vm /tmp/iso-b.log -- guest-isolation bravo
rb=$?
wait $a; ra=$?
if [ $ra -eq 0 ] && [ $rb -eq 0 ] && grep -aq '^isolation: ok' /tmp/iso-a.log && grep -aq '^isolation: ok' /tmp/iso-b.log; then
  result pass isolation:two-instances "$(grep -a '^isolation:' /tmp/iso-a.log | tr -d '\r')"
else
  result fail isolation:two-instances "exits $ra/$rb"; show /tmp/iso-a.log 15; show /tmp/iso-b.log 15
fi

# 4. Through nexusd: the `vm` sandbox driver starts nexus-vmm per instance; the Python runtime
#    finds /dev/nexus; the example `hello` answers.  Needs nexusd, the CLI, the runtime dir and
#    mke2fs in L1 (test-vm.sh passes them).
if [ -x "$D/nexusd" ] && [ -x "$D/nexus" ] && [ -d "$D/runtime" ]; then
  mkdir -p /tmp/nxd/rootfs /tmp/nxd/home
  NEXUS_VMM=$D/nexus-vmm NEXUS_GUEST_KERNEL=$D/vmlinux NEXUS_GUEST_IMAGE=$ROOT \
    "$D/nexusd" --listen 127.0.0.1:9070 --state-dir /tmp/nxd/state --runtime-dir "$D/runtime" \
    --rootfs /tmp/nxd/rootfs >/tmp/nexusd.log 2>&1 &
  nxd=$!
  i=0; while [ $i -lt 60 ] && ! grep -q 'ready on' /tmp/nexusd.log; do sleep 1; i=$((i + 1)); done
  grep -a 'sandbox driver vm' /tmp/nexusd.log | sed 's/^/INFO /'
  export NEXUS_HOME=/tmp/nxd/home NEXUS_PORT=9070
  t0=$(date +%s)
  if "$D/nexus" deploy "$D/hello" --sandbox vm --timeout 120 --memory 256 >/tmp/deploy.log 2>&1 &&
     "$D/nexus" invoke hello --payload '{"name":"microvm"}' >/tmp/invoke.log 2>&1 &&
     grep -q 'Hello, microvm!' /tmp/invoke.log; then
    result pass nexusd:hello-cold "$(tr -d '\n' </tmp/invoke.log | cut -c1-150) ($(( $(date +%s) - t0 ))s, cold start in a microVM)"
    t0=$(date +%s)
    if "$D/nexus" invoke hello --payload '{"name":"again"}' >/tmp/invoke2.log 2>&1 && grep -q 'Hello, again!' /tmp/invoke2.log; then
      result pass nexusd:hello-warm "second invocation on the warm microVM ($(( $(date +%s) - t0 ))s)"
    else
      result fail nexusd:hello-warm "$(cat /tmp/invoke2.log)"
    fi
  else
    result fail nexusd:hello-cold "deploy/invoke failed"; show /tmp/deploy.log 10; show /tmp/invoke.log 10
    show /tmp/nexusd.log 30; show /tmp/nxd/state/logs/hello.log 40
  fi
  kill "$nxd" 2>/dev/null; wait "$nxd" 2>/dev/null
else
  echo "INFO nexusd case not run: nexusd/nexus/runtime not passed into L1"
fi
