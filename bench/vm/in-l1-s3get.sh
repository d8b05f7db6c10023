#!/bin/sh
# bench/vm, second part (bench/vm/README.md): a 1 MiB get_object through the shim in a microVM
# (nexus mode: Nexus device -> nexusd -> S3) against the real boto3 in the same guest image over
# virtio-net + tap, both to the same s3rver in L1.  POSIX sh (busybox); run it in a network
# namespace of its own (run.sh: `unshare -n`), where the tap lives.
#   in-l1-s3get.sh DIR ROOTFS TESTDISK GETS
# DIR holds nexus-vmm, vmlinux, nexusd, nexus, runtime/, s3get/, ip (iproute2), rig-s3rver.sh.
# Each side: a warm-up request (3 GETs; the shim's includes the cold start), then one request of
# 0 GETs and one of GETS GETs, with L1's KVM exit counters read around each: exits per GET =
# (delta(GETS) - delta(0)) / GETS, the per-request overhead (invoke or trigger) cancelled.
# Prints "BENCH s3get SIDE ..." lines that run.sh summarizes.
set -u
D=$1 ROOT=$2 DISK=$3 G=${4:-30}
BASE="console=ttyS0 quiet root=/dev/vda ro rootfstype=ext4 init=/sbin/nexus-init panic=-1 reboot=k"
PORT=9091 API=9092 BUCKET=nexus-bench KEY=obj-1m
K=/sys/kernel/debug/kvm STATS="exits io_exits mmio_exits irq_exits halt_exits irq_injections"
mount -t debugfs none /sys/kernel/debug 2>/dev/null
snap() { for s in $STATS; do printf '%s=%s ' "$s" "$(cat $K/$s 2>/dev/null || echo 0)"; done; }
say() { echo "BENCH s3get $*"; }
show() { echo "---- $1 ----"; tail -n "${2:-30}" "$1" | tr -d '\r' | sed 's/^/  | /'; echo "----"; }

# The namespace's network: lo (nexusd, the CLI, s3rver) and tap0 = 10.0.2.1 for the guest.
"$D/ip" link set lo up && "$D/ip" tuntap add tap0 mode tap && "$D/ip" addr add 10.0.2.1/24 dev tap0 &&
  "$D/ip" link set tap0 up || { say "setup failed: network"; exit 0; }

. "$D/rig-s3rver.sh"
s3rver_start "" /tmp/s3bench 0.0.0.0 $PORT /tmp/s3rver-bench.log || { say "not run: $S3RVER_WHY"; exit 0; }
export NEXUS_HOME=/tmp/nxb/home NEXUS_PORT=$API NEXUS_S3_PORT=$PORT
mkdir -p /tmp/nxb/home /tmp/nxb/rootfs
i=0; while [ $i -lt 120 ] && ! "$D/nexus" s3 mb $BUCKET >/dev/null 2>&1; do sleep 1; i=$((i + 1)); done
head -c 1048576 /dev/urandom >/tmp/obj-1m
"$D/nexus" s3 put $BUCKET/$KEY /tmp/obj-1m >/dev/null || { say "setup failed: s3rver"; show /tmp/s3rver-bench.log; exit 0; }

# measure SIDE N CMD...: CMD prints one JSON line; the counters are read around it.
measure() {
  side=$1 n=$2; shift 2
  b=$(snap); out=$("$@" 2>/tmp/measure.err); a=$(snap)
  say "$side n=$n before: $b"; say "$side n=$n after:  $a"
  say "$side n=$n json $(echo "$out" | tr -d '\r\n')"
  [ -n "$out" ] || show /tmp/measure.err 10
}

# --- the shim: s3get deployed in a microVM, nexus mode ----------------------------------------
AWS_ENDPOINT_URL_S3=http://127.0.0.1:$PORT AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 \
NEXUS_VMM=$D/nexus-vmm NEXUS_GUEST_KERNEL=$D/vmlinux NEXUS_GUEST_IMAGE=$ROOT \
  "$D/nexusd" --listen 127.0.0.1:$API --state-dir /tmp/nxb/state --runtime-dir "$D/runtime" \
  --rootfs /tmp/nxb/rootfs >/tmp/nexusd-bench.log 2>&1 &
nxd=$!
i=0; while [ $i -lt 60 ] && ! grep -qs 'ready on' /tmp/nexusd-bench.log; do sleep 1; i=$((i + 1)); done
ev() { echo "{\"bucket\": \"$BUCKET\", \"key\": \"$KEY\", \"n\": $1}"; }
if "$D/nexus" deploy "$D/s3get" --name s3get --sandbox vm --buckets $BUCKET --timeout 600 --memory 256 >/tmp/dep.log 2>&1; then
  t0=$(date +%s)
  measure shim-warmup 3 "$D/nexus" invoke s3get --payload "$(ev 3)"
  echo "INFO s3get shim: deploy + cold start + 3 GETs took $(( $(date +%s) - t0 ))s"
  measure shim 0 "$D/nexus" invoke s3get --payload "$(ev 0)"
  measure shim "$G" "$D/nexus" invoke s3get --payload "$(ev "$G")"
  "$D/nexus" delete s3get >/dev/null 2>&1
else
  say "shim not run: deploy failed"; show /tmp/dep.log 10; show /tmp/nexusd-bench.log 20
fi
kill $nxd; wait $nxd 2>/dev/null

# --- real boto3: the same app.py as a TCP-triggered server in a guest with virtio-net ------------
c="mount -o ro /dev/vdb /mnt && exec /usr/bin/python3 /mnt/s3get/app.py serve http://10.0.2.1:$PORT 7001"
enc=$(echo "$c" | sed 's/%/%25/g; s/ /%20/g')
"$D/nexus-vmm" --kernel "$D/vmlinux" --mem 256 --disk "$ROOT,ro" --disk "$DISK,ro" --net tap0 --serial stdout \
  --cmdline "$BASE ip=10.0.2.15::10.0.2.1:255.255.255.0::eth0:off nexus.cmd=\"/bin/sh -c $enc\"" \
  </dev/null >/tmp/s3get-vm.log 2>&1 &
vmm=$!
t0=$(date +%s)
i=0; while [ $i -lt 300 ] && ! grep -aq 's3get: serving' /tmp/s3get-vm.log; do sleep 1; i=$((i + 1)); done
echo "INFO s3get boto3: guest up after $(( $(date +%s) - t0 ))s"
trigger() { echo "$1 $BUCKET $KEY" | nc 10.0.2.15 7001; }
if grep -aq 's3get: serving' /tmp/s3get-vm.log; then
  measure boto3-warmup 3 trigger 3
  measure boto3 0 trigger 0
  measure boto3 "$G" trigger "$G"
else
  say "boto3 not run: the guest did not come up"; show /tmp/s3get-vm.log 30
fi
kill $vmm $S3RVER_PID 2>/dev/null; wait $vmm $S3RVER_PID 2>/dev/null
exit 0
