#!/bin/sh
# The A/B evaluation's quick subset on the `vm` driver, in L1 of rig/run-l1 (busybox sh) or on
# a hardware-KVM host.  POSIX sh.  Started by bench/vm-ab/run.sh, which also writes the page.
#
#   in-l1.sh DIR ROOTFS ROUNDS N
# DIR: nexusd, nexus, nexus-vmm, vmlinux, runtime/, hello/, wordcount/, nexus-bench-load,
# nexus-s3peer (or rig-s3rver.sh), mods/{llc,stp,bridge}.ko (if the rig does not load the bridge).
#
# One nexusd (vm driver, snapshots off so that both modes cold-start by a fresh boot), the S3
# server on L1's loopback.  For hello and wordcount (1 KiB input), in both modes, deployed side by side:
#   cold   the first invocation of a freshly deployed function, client wall time
#   warm   ROUNDS rounds x N invocations over one kept-alive connection (nexus-bench-load),
#          nexus and baseline alternating round by round; p50/p99 over all rounds
#   cpu    during the warm rounds: the instance's monitor (nexus-vmm: vCPU + device threads,
#          i.e. everything the guest did) + nexusd's threads except nx-relay, per invocation;
#          nx-relay apart (baseline only); the S3 server and the load generator excluded
#   pss    of the instance's monitor after its warm rounds (smaps_rollup: the guest RAM it
#          touched is its memfd mapping; anon + shmem + file parts)
# Prints "AB FUNCTION MODE METRIC VALUE" lines.
set -u
D=$1 ROOT=$2 ROUNDS=${3:-3} N=${4:-100}
PORT=9079 S3PORT=9080 BUCKET=nexus-vmab
S=/tmp/vmab
say() { echo "INFO $(date +%H:%M:%S) $*"; }
rm -rf $S; mkdir -p $S/rootfs $S/home $S/in

if [ ! -d /sys/module/bridge ]; then
  for m in llc stp bridge; do [ -f "$D/mods/$m.ko" ] && insmod "$D/mods/$m.ko" 2>/dev/null; done
fi
[ -d /sys/module/bridge ] || { echo "ABERROR no bridge module in L1: baseline mode cannot run"; exit 0; }

now_ms() {
  n=$(date +%s%N 2>/dev/null)
  case "$n" in *N|'') awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime ;; *) echo $((n / 1000000)) ;; esac
}
# CPU ticks (utime+stime) of a process, or of nexusd's threads except / only nx-relay.
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
nxd_ticks() {   # PID WHICH(node|relay)
  t=0
  for d in /proc/$1/task/*; do
    c=$(cat "$d/comm" 2>/dev/null)
    if [ "$2" = relay ]; then [ "$c" = nx-relay ] || continue; else [ "$c" = nx-relay ] && continue; fi
    t=$((t + $(ticks "${d#/proc/}")))
  done
  echo $t
}
HZ=100   # USER_HZ on Linux x86
monitors() { for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = nexus-vmm ] && echo "${p#/proc/}"; done | sort; }

# Storage: nexus-s3peer (bench/s3peer, C, in memory, SigV4-checked), as `nexus bench` uses by
# default; s3rver (node.js) when it is not given. Under TCG s3rver's ~0.5 s per request hid
# everything else in wordcount.
if [ -x "$D/nexus-s3peer" ]; then
  "$D/nexus-s3peer" --address 127.0.0.1 --port $S3PORT --threads 1 >$S/s3peer.log 2>&1 &
  S3PID=$! S3KIND=nexus-s3peer
else
  . "$D/rig-s3rver.sh"
  s3rver_start "" $S/s3data 127.0.0.1 $S3PORT $S/s3rver.log || { echo "ABERROR s3rver: ${S3RVER_WHY:-?}"; exit 0; }
  S3PID=$S3RVER_PID S3KIND=s3rver
fi
echo "AB meta - s3 $S3KIND"
export NEXUS_HOME=$S/home NEXUS_PORT=$PORT NEXUS_S3_PORT=$S3PORT
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3
i=0; while [ $i -lt 120 ] && ! "$D/nexus" s3 mb $BUCKET >/dev/null 2>&1; do sleep 1; i=$((i + 1)); done

AWS_ENDPOINT_URL_S3=http://127.0.0.1:$S3PORT AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 \
NEXUS_VM_SNAPSHOT=off NEXUS_VMM="$D/nexus-vmm" NEXUS_GUEST_KERNEL="$D/vmlinux" NEXUS_GUEST_IMAGE="$ROOT" \
  "$D/nexusd" --listen 127.0.0.1:$PORT --state-dir $S/state --runtime-dir "$D/runtime" \
  --rootfs $S/rootfs --keep-alive 7200 >$S/nexusd.log 2>&1 &
NXD=$!
i=0; while [ $i -lt 60 ] && ! grep -qs 'ready on' $S/nexusd.log; do sleep 1; i=$((i + 1)); done
URL=http://127.0.0.1:$PORT

# Inputs, 1 KiB: hello's event carries a 1 KiB name; wordcount reads a 1 KiB text object.
name=$(head -c 2000 /dev/urandom | base64 | tr -dc 'a-z' | head -c 1000)
printf '{"name": "%s"}' "$name" >$S/in/hello.json
awk 'BEGIN { srand(2019); s = ""; while (length(s) < 1024) s = s sprintf("w%d ", int(rand() * 50)); printf "%s", substr(s, 1, 1024) }' >$S/in/wc.txt
"$D/nexus" s3 put $BUCKET/ab/wc-1k.txt $S/in/wc.txt >/dev/null
printf '{"bucket": "%s", "key": "ab/wc-1k.txt", "output_key": "ab/wc-1k.out", "top": 5}' $BUCKET >$S/in/wordcount.json

for fn in hello wordcount; do
  for mode in nexus baseline; do
    "$D/nexus" deploy "$D/$fn" --name $fn-$mode --mode $mode --sandbox vm --timeout 300 --memory 256 \
      --buckets $BUCKET >$S/deploy.log 2>&1 || { echo "ABERROR deploy $fn-$mode: $(tr -d '\n' <$S/deploy.log | cut -c1-200)"; continue; }
    before=$(monitors)
    t0=$(now_ms)
    "$D/nexus" invoke $fn-$mode --payload "@$S/in/$fn.json" >$S/cold.out 2>&1; rc=$?
    cold=$(( $(now_ms) - t0 ))
    pid=$(monitors | while read -r p; do echo "$before" | grep -qx "$p" || echo "$p"; done | head -1)
    echo "$pid" >$S/pid-$fn-$mode
    say "$fn-$mode cold ${cold} ms exit $rc monitor pid ${pid:-?}: $(tr -d '\n' <$S/cold.out | cut -c1-100)"
    if [ $rc -ne 0 ]; then
      echo "ABERROR $fn-$mode cold invoke failed (exit $rc: $(tr -d '\n' <$S/cold.out | cut -c1-160)); cold start not counted"
      tail -20 "$S/state/logs/$fn-$mode.log"
      "$D/nexus" invoke $fn-$mode --payload "@$S/in/$fn.json" >/dev/null 2>&1   # an instance for the warm rounds
      pid=$(monitors | while read -r p; do echo "$before" | grep -qx "$p" || echo "$p"; done | tail -1)
      echo "$pid" >$S/pid-$fn-$mode
    else
      echo "AB $fn $mode cold_ms $cold"
    fi
    : >$S/lat-$fn-$mode
    echo 0 >$S/calls-$fn-$mode; echo 0 >$S/node-$fn-$mode; echo 0 >$S/mon-$fn-$mode; echo 0 >$S/relay-$fn-$mode
  done
  r=0
  while [ $r -lt "$ROUNDS" ]; do
    r=$((r + 1))
    for mode in nexus baseline; do
      pid=$(cat $S/pid-$fn-$mode)
      [ -n "$pid" ] || continue
      n0=$(nxd_ticks $NXD node) r0=$(nxd_ticks $NXD relay) m0=$(ticks "$pid")
      "$D/nexus-bench-load" closed $URL $fn-$mode "$S/in/$fn.json" "$N" 5 $S/lat.tmp >$S/load.out 2>$S/load.err
      n1=$(nxd_ticks $NXD node) r1=$(nxd_ticks $NXD relay) m1=$(ticks "$pid")
      cat $S/lat.tmp >>$S/lat-$fn-$mode
      k=$(wc -l <$S/lat.tmp)
      echo $(( $(cat $S/calls-$fn-$mode) + k )) >$S/calls-$fn-$mode
      echo $(( $(cat $S/node-$fn-$mode) + n1 - n0 )) >$S/node-$fn-$mode
      echo $(( $(cat $S/mon-$fn-$mode) + m1 - m0 )) >$S/mon-$fn-$mode
      echo $(( $(cat $S/relay-$fn-$mode) + r1 - r0 )) >$S/relay-$fn-$mode
      say "$fn-$mode round $r: $(cat $S/load.out) $(head -c 200 $S/load.err)"
    done
  done
  for mode in nexus baseline; do
    pid=$(cat $S/pid-$fn-$mode)
    [ -n "$pid" ] || continue
    sort -n $S/lat-$fn-$mode | awk -v f=$fn -v m=$mode '{ a[NR] = $1 } END {
      if (!NR) exit; i99 = int(NR * 0.99 + 0.999); if (i99 > NR) i99 = NR
      printf "AB %s %s warm_n %d\nAB %s %s warm_p50_ms %.3f\nAB %s %s warm_p99_ms %.3f\n", f, m, NR, f, m, a[int((NR + 1) / 2)] / 1e6, f, m, a[i99] / 1e6 }'
    c=$(cat $S/calls-$fn-$mode)
    [ "$c" -gt 0 ] && awk -v f=$fn -v m=$mode -v c=$c -v nd=$(cat $S/node-$fn-$mode) -v mo=$(cat $S/mon-$fn-$mode) \
      -v rl=$(cat $S/relay-$fn-$mode) -v hz=$HZ 'BEGIN {
      printf "AB %s %s cpu_ms_per_call %.3f\nAB %s %s cpu_nexusd_ms_per_call %.3f\nAB %s %s cpu_monitor_ms_per_call %.3f\nAB %s %s cpu_relay_ms_per_call %.3f\n",
        f, m, (nd + mo) * 1000 / hz / c, f, m, nd * 1000 / hz / c, f, m, mo * 1000 / hz / c, f, m, rl * 1000 / hz / c }'
    awk -v f=$fn -v m=$mode '/^(Rss|Pss|Pss_Anon|Pss_File|Pss_Shmem):/ { printf "AB %s %s %s_kib %s\n", f, m, tolower(substr($1, 1, length($1) - 1)), $2 }' \
      /proc/$pid/smaps_rollup 2>/dev/null
  done
  for mode in nexus baseline; do "$D/nexus" delete $fn-$mode >/dev/null 2>&1; done   # L1's RAM
done
echo "AB meta - l1_loadavg $(cut -d' ' -f1 /proc/loadavg)"
echo "AB meta - nproc $(grep -c ^processor /proc/cpuinfo)"
kill $NXD $S3PID 2>/dev/null; wait $NXD $S3PID 2>/dev/null
exit 0
