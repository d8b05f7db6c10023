#!/bin/sh
# The A/B evaluation on the `vm` driver, in L1 of rig/run-l1 (busybox sh) or on a hardware-KVM
# host.  POSIX sh.  Started by bench/vm-ab/run.sh, which makes the inputs and the plan on the
# host (bench/vm-ab/make-inputs.py) and writes the page from what this prints (report.py).
#
#   in-l1.sh DIR ROOTFS ROUNDS WARM_S NMIN NMAX BUDGET_S
# DIR: nexusd, nexus, nexus-vmm, vmlinux, runtime/, fn/<function>/, inputs/ (plan.txt + the
# input objects), nexus-bench-load, nexus-s3peer (or rig-s3rver.sh), mods/{llc,stp,bridge}.ko.
#
# One nexusd (vm driver, snapshots off so that both modes cold-start by a fresh boot), the S3
# server on L1's loopback.  inputs/plan.txt lists the cells "FUNCTION SIZE INPUT|-" in the order
# to run them.  Both modes of a function are deployed side by side while its cells run (and
# deleted when the plan moves to another function: L1's RAM).  Per cell:
#   check  one call per mode (the first one of a function is its cold start): both must
#          succeed; the responses and the output objects' sha256 are printed so that report.py
#          can check that the modes agree (the digests are compared here too)
#   warm   ROUNDS rounds, nexus and baseline alternating (the order flips each round), each of
#          n calls over one kept-alive connection (nexus-bench-load closed, no warm-up: the
#          check call was it).  n = WARM_S seconds per mode / ROUNDS / the slower call (the
#          check call, or the median of three load-generator calls when it took < 5 s: the
#          CLI's own cost),
#          clamped to [NMIN, NMAX], and cut further so that the cell ends within BUDGET_S of
#          the start (two rounds if three do not fit); a cell that cannot fit two rounds of
#          one call is skipped (said so)
#   cpu    per round: the instance's monitor (nexus-vmm: vCPU + device threads = everything
#          the guest did) + nexusd's threads except nx-relay; nx-relay apart (baseline only)
#   pss    of the instance's monitor after the cell's rounds (smaps_rollup)
# Prints raw lines for report.py (all values raw, no statistics here):
#   ABCOLD F MODE MS | ABCOLDRETRY F MODE MS WHY | ABPLAN F SIZE ROUNDS N T_NEXUS_MS T_BASELINE_MS
#   ABLAT F SIZE MODE ROUND NS... | ABCPU F SIZE MODE ROUND CALLS NODE_TICKS MON_TICKS RELAY_TICKS
#   ABFAIL F SIZE MODE ROUND COUNT TEXT | ABMEM F SIZE MODE RSS PSS PSS_ANON PSS_SHMEM PSS_FILE (KiB)
#   ABOUT F SIZE MODE RESPONSE | ABOBJ F SIZE MODE SHA256 BYTES
#   ABCELL F SIZE ok|error|skipped REASON | AB meta - KEY VALUE
# and "INFO hh:mm:ss ..." progress lines.
set -u
D=$1 ROOT=$2 ROUNDS=${3:-3} WARM_S=${4:-45} NMIN=${5:-1} NMAX=${6:-100} BUDGET_S=${7:-2900}
PORT=9079 S3PORT=9080 BUCKET=nexus-vmab MEM_MB=512 FN_TIMEOUT=900
S=/tmp/vmab
say() { echo "INFO $(date +%H:%M:%S) $*"; }
rm -rf $S; mkdir -p $S/rootfs $S/home $S/ev $S/obj

now_ms() {
  n=$(date +%s%N 2>/dev/null)
  case "$n" in *N|'') awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime ;; *) echo $((n / 1000000)) ;; esac
}
T_START=$(now_ms)
elapsed_s() { echo $(( ($(now_ms) - T_START) / 1000 )); }

if [ ! -d /sys/module/bridge ]; then
  for m in llc stp bridge; do [ -f "$D/mods/$m.ko" ] && insmod "$D/mods/$m.ko" 2>/dev/null; done
fi
[ -d /sys/module/bridge ] || { echo "ABERROR no bridge module in L1: baseline mode cannot run"; exit 0; }

# CPU ticks (utime+stime) of a process (all its threads, dead ones included), or of nexusd's
# threads except / only nx-relay.
# An empty pid (a monitor that is gone) is 0, not /proc//stat = /proc/stat.
ticks() {
  [ -n "$1" ] || { echo 0; return; }
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
nxd_ticks() {   # PID WHICH(node|relay)
  t=0
  for d in /proc/$1/task/*; do
    c=$(cat "$d/comm" 2>/dev/null)
    if [ "$2" = relay ]; then [ "$c" = nx-relay ] || continue; else [ "$c" = nx-relay ] && continue; fi
    t=$((t + $(ticks "${d#/proc/}")))
  done
  echo $t
}
# Why an instance died: nexusd's last lines about it, and the guest's console (the function's
# log: a kernel panic or a triple fault's last words print there).
guest_tail() {   # NAME
  grep -a "$1" $S/nexusd.log | tail -n 5 | sed 's/^/INFO nexusd: /'
  "$D/nexus" logs "$1" 2>&1 | grep -avE '^(START|END|REPORT) ' | tail -n 25 | sed 's/^/INFO guest: /'
}

# The monitor of FUNCTION-MODE: the pid of its newest instance as nexusd logged it ("instance N
# (NAME, pid P, runtime ...) ready"); for the vm driver that pid is the instance's nexus-vmm.  An
# instance that died (a guest panic, a timeout) is replaced by a fresh boot with a new monitor
# (REBOOTED=1).  Guessing by "the monitor not seen before" attributed two monitors started in the
# same check step to the wrong modes.  Sets PID (empty when nexusd logged none).
monitor_of() {   # NAME
  old=$(cat $S/pid-$1 2>/dev/null)
  PID=$(grep -a "($1, pid [0-9]*, runtime [^)]*) ready" $S/nexusd.log | tail -n 1 | sed 's/.*, pid \([0-9]*\), runtime.*/\1/')
  [ -n "$old" ] && [ "$PID" != "$old" ] && REBOOTED=1
  echo "$PID" >$S/pid-$1
}

# Storage: nexus-s3peer (bench/s3peer, C, in memory, SigV4-checked), as `nexus bench` uses by
# default; s3rver (node.js) when it is not given (~0.5 s per request under TCG).
if [ -x "$D/nexus-s3peer" ]; then
  "$D/nexus-s3peer" --address 127.0.0.1 --port $S3PORT --threads 1 >$S/s3peer.log 2>&1 &
  S3PID=$! S3KIND=nexus-s3peer
else
  . "$D/rig-s3rver.sh"
  s3rver_start "" $S/s3data 127.0.0.1 $S3PORT $S/s3rver.log || { echo "ABERROR s3rver: ${S3RVER_WHY:-?}"; exit 0; }
  S3PID=$S3RVER_PID S3KIND=s3rver
fi
echo "AB meta - s3 $S3KIND"
echo "AB meta - guest_memory_mb $MEM_MB"
echo "AB meta - warm $ROUNDS $WARM_S $NMIN $NMAX $BUDGET_S"
export NEXUS_HOME=$S/home NEXUS_PORT=$PORT NEXUS_S3_PORT=$S3PORT
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3
i=0; while [ $i -lt 120 ] && ! "$D/nexus" s3 mb $BUCKET >/dev/null 2>&1; do sleep 1; i=$((i + 1)); done

AWS_ENDPOINT_URL_S3=http://127.0.0.1:$S3PORT AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 \
NEXUS_VM_SNAPSHOT=off NEXUS_VMM="$D/nexus-vmm" NEXUS_GUEST_KERNEL="$D/vmlinux" NEXUS_GUEST_IMAGE="$ROOT" \
  "$D/nexusd" --listen 127.0.0.1:$PORT --state-dir $S/state --runtime-dir "$D/runtime" \
  --rootfs $S/rootfs --keep-alive 7200 --init-timeout "${NEXUS_INIT_TIMEOUT:-120}" >$S/nexusd.log 2>&1 &
NXD=$!
i=0; while [ $i -lt 60 ] && ! grep -qs 'ready on' $S/nexusd.log; do sleep 1; i=$((i + 1)); done
URL=http://127.0.0.1:$PORT

# Events.  hello: a 1 KiB name in the event (no input object, as `nexus bench` runs it sizeless);
# the others: the input object in/F/SIZE, output to out/F/SIZE/MODE (one per mode, compared).
name=$(head -c 2000 /dev/urandom | base64 | tr -dc 'a-z' | head -c 1000)
event() {   # F SIZE MODE -> file
  e=$S/ev/$1-$2-$3.json
  case $1 in
    hello) printf '{"name": "%s"}' "$name" >"$e" ;;
    wordcount) printf '{"bucket": "%s", "key": "in/%s/%s", "output_key": "out/%s/%s/%s", "top": 5}' $BUCKET $1 $2 $1 $2 $3 >"$e" ;;
    *) printf '{"bucket": "%s", "key": "in/%s/%s", "output_key": "out/%s/%s/%s"}' $BUCKET $1 $2 $1 $2 $3 >"$e" ;;
  esac
  echo "$e"
}

# One call through the CLI: sets T_MS and RC, the response in $S/resp.
call() {   # NAME EVENTFILE
  t0=$(now_ms)
  "$D/nexus" invoke "$1" --payload "@$2" --cli-timeout $((FN_TIMEOUT + 60)) >$S/resp 2>&1; RC=$?
  T_MS=$(( $(now_ms) - t0 ))
}
# A fresh boot slower than nexusd's start limit (--init-timeout, 120 s here; nexusd's default is 30 s)
# happens under TCG when the machine is loaded; that is the rig, not the function.
start_failed() { grep -Eqs 'Runtime failed to start|not ready within' $S/resp; }

deployed= COLD_DONE=
nfn=0
undeploy() { [ -n "$deployed" ] && for m in nexus baseline; do "$D/nexus" delete $deployed-$m >/dev/null 2>&1; done; deployed=; }

while read -r F SIZE INPUT <&3; do
  case "$F" in ''|'#'*) continue ;; esac
  if [ "$(elapsed_s)" -ge "$BUDGET_S" ]; then
    echo "ABCELL $F $SIZE skipped time budget of ${BUDGET_S} s used up before the cell started"; continue
  fi
  if [ "$INPUT" != - ]; then
    "$D/nexus" s3 put "$BUCKET/in/$F/$SIZE" "$D/inputs/$INPUT" >$S/put.log 2>&1 ||
      { echo "ABCELL $F $SIZE error upload of the input failed: $(tr -d '\n' <$S/put.log | cut -c1-200)"; continue; }
  fi
  # Deploy both modes when the plan reaches a function (the first cell of a function is
  # where its cold start is measured; a function met again later is redeployed, not timed).
  first=0
  if [ "$deployed" != "$F" ]; then
    undeploy
    ok=1
    for mode in nexus baseline; do
      rm -f $S/pid-$F-$mode
      "$D/nexus" deploy "$D/fn/$F" --name $F-$mode --mode $mode --sandbox vm --timeout $FN_TIMEOUT \
        --memory $MEM_MB --buckets $BUCKET >$S/deploy.log 2>&1 ||
        { echo "ABCELL $F $SIZE error deploy $F-$mode: $(tr -d '\n' <$S/deploy.log | cut -c1-200)"; ok=0; }
    done
    [ $ok = 1 ] || { undeploy; continue; }
    deployed=$F; nfn=$((nfn + 1))
    case " $COLD_DONE " in *" $F "*) ;; *) first=1; COLD_DONE="$COLD_DONE $F" ;; esac
  fi
  # Check calls (the cold start first, nexus first for odd functions, baseline for even ones).
  if [ $((nfn % 2)) = 1 ]; then order="nexus baseline"; else order="baseline nexus"; fi
  bad= REBOOTED=0
  for mode in $order; do
    ev=$(event $F $SIZE $mode)
    call $F-$mode "$ev"
    if [ $RC != 0 ] && start_failed; then   # once more: the next call boots a fresh instance
      say "$F-$mode: $(tr -d '\n' <$S/resp | cut -c1-200) (${T_MS} ms); once more"
      [ $first = 1 ] && echo "ABCOLDRETRY $F $mode $T_MS $(tr -d '\n' <$S/resp | cut -c1-200)"
      call $F-$mode "$ev"
    fi
    if [ $first = 1 ]; then
      say "$F-$mode cold ${T_MS} ms exit $RC: $(tr -d '\n' <$S/resp | cut -c1-100)"
      [ $RC = 0 ] && echo "ABCOLD $F $mode $T_MS"
      [ $RC = 0 ] && call $F-$mode "$ev"   # the warm estimate
    fi
    monitor_of $F-$mode
    echo "$T_MS" >$S/t-$mode
    echo "ABOUT $F $SIZE $mode $(tr -d '\n' <$S/resp | cut -c1-3000)"
    if [ $RC != 0 ]; then
      guest_tail $F-$mode
      bad="$bad $mode call failed (exit $RC, ${T_MS} ms: $(tr -d '\n' <$S/resp | cut -c1-200));"
      continue
    fi
    if [ "$F" != hello ]; then
      if "$D/nexus" s3 get "$BUCKET/out/$F/$SIZE/$mode" $S/obj/$mode >$S/get.log 2>&1; then
        echo "ABOBJ $F $SIZE $mode $(sha256sum <$S/obj/$mode | cut -d' ' -f1) $(wc -c <$S/obj/$mode)"
      else
        bad="$bad $mode output object missing ($(tr -d '\n' <$S/get.log | cut -c1-100));"
      fi
    fi
  done
  if [ -z "$bad" ] && [ "$F" != hello ] && ! cmp -s $S/obj/nexus $S/obj/baseline; then
    bad="output objects differ between the modes (nexus $(wc -c <$S/obj/nexus) B, baseline $(wc -c <$S/obj/baseline) B)"
  fi
  rm -f $S/obj/nexus $S/obj/baseline
  if [ -n "$bad" ]; then
    say "$F $SIZE: ERROR$bad"
    echo "ABCELL $F $SIZE error$bad"
    continue
  fi
  tn=$(cat $S/t-nexus) tb=$(cat $S/t-baseline)
  # A check call through the CLI costs ~1 s more than a call of the load generator under TCG
  # (process start, a new connection): for calls that short, time three load-generator calls
  # and take the median (the first calls after a size change are slow: the guest grows its
  # heap).  A check call that booted a fresh instance (the last one had died): time one call.
  k=0
  if [ "$tn" -lt 5000 ] && [ "$tb" -lt 5000 ]; then k=3; elif [ $REBOOTED = 1 ]; then k=1; fi
  if [ $k -gt 0 ]; then
    for mode in nexus baseline; do
      : >$S/lat.tmp
      "$D/nexus-bench-load" closed $URL $F-$mode "$S/ev/$F-$SIZE-$mode.json" $k 0 $S/lat.tmp >/dev/null 2>&1
      ns=$(sort -n $S/lat.tmp | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }')
      [ -n "$ns" ] && echo $((ns / 1000000 + 1)) >$S/t-$mode
    done
    tn=$(cat $S/t-nexus) tb=$(cat $S/t-baseline)
  fi
  tmax=$tn; [ "$tb" -gt "$tmax" ] && tmax=$tb; [ "$tmax" -gt 0 ] || tmax=1
  R=$ROUNDS
  n=$(( WARM_S * 1000 / R / tmax )); [ $n -lt "$NMIN" ] && n=$NMIN; [ $n -gt "$NMAX" ] && n=$NMAX
  left=$(( BUDGET_S - $(elapsed_s) ))
  fit=$(( left * 1000 / R / (tn + tb + 1) ))
  # Short of time: two rounds still give a min and a max; fewer is no A/B across rounds.
  [ $fit -lt 1 ] && [ "$R" -gt 2 ] && R=2 && fit=$(( left * 1000 / R / (tn + tb + 1) ))
  if [ $fit -lt 1 ]; then
    say "$F $SIZE: skipped (${R} x (${tn} + ${tb}) ms do not fit in the ${left} s left)"
    echo "ABCELL $F $SIZE skipped time budget: ${R} rounds of one call per mode (~$(( R * (tn + tb) / 1000 )) s) do not fit in the ${left} s left"
    continue
  fi
  [ $n -gt $fit ] && n=$fit
  echo "ABPLAN $F $SIZE $R $n $tn $tb"
  say "$F $SIZE: check ${tn} / ${tb} ms (nexus / baseline): $R rounds x $n calls per mode"
  r=0
  while [ $r -lt "$R" ]; do
    r=$((r + 1))
    if [ $((r % 2)) = 1 ]; then order="nexus baseline"; else order="baseline nexus"; fi
    for mode in $order; do
      monitor_of $F-$mode; pid=$PID
      if [ -z "$pid" ] || [ "$(cat /proc/$pid/comm 2>/dev/null)" != nexus-vmm ]; then
        # It died in an earlier round: boot its replacement outside the measurement.
        "$D/nexus-bench-load" closed $URL $F-$mode "$S/ev/$F-$SIZE-$mode.json" 1 0 $S/lat.tmp >/dev/null 2>&1
        monitor_of $F-$mode; pid=$PID
      fi
      n0=$(nxd_ticks $NXD node) r0=$(nxd_ticks $NXD relay) m0=$(ticks "$pid")
      "$D/nexus-bench-load" closed $URL $F-$mode "$S/ev/$F-$SIZE-$mode.json" "$n" 0 $S/lat.tmp >$S/load.out 2>$S/load.err
      n1=$(nxd_ticks $NXD node) r1=$(nxd_ticks $NXD relay) m1=$(ticks "$pid")
      if [ -z "$pid" ] || [ "$(cat /proc/$pid/comm 2>/dev/null)" != nexus-vmm ]; then
        echo "ABFAIL $F $SIZE $mode $r 0 the monitor ${pid:-(none found)} went away during the round"
        guest_tail $F-$mode
      fi
      echo "ABLAT $F $SIZE $mode $r $(tr '\n' ' ' <$S/lat.tmp)"
      echo "ABCPU $F $SIZE $mode $r $n $((n1 - n0)) $((m1 - m0)) $((r1 - r0))"
      failed=$(sed -n 's/.*"failed": *\([0-9]*\).*/\1/p' $S/load.out)
      [ "${failed:-0}" = 0 ] || echo "ABFAIL $F $SIZE $mode $r $failed $(head -n 1 $S/load.err | cut -c1-200)"
      say "$F $SIZE $mode round $r/$R: $(cat $S/load.out) $(head -c 200 $S/load.err)"
    done
  done
  for mode in nexus baseline; do
    monitor_of $F-$mode; pid=$PID
    awk -v f=$F -v s=$SIZE -v m=$mode '/^(Rss|Pss|Pss_Anon|Pss_Shmem|Pss_File):/ { v[$1] = $2 } END {
      printf "ABMEM %s %s %s %d %d %d %d %d\n", f, s, m, v["Rss:"], v["Pss:"], v["Pss_Anon:"], v["Pss_Shmem:"], v["Pss_File:"] }' \
      /proc/$pid/smaps_rollup 2>/dev/null
  done
  echo "ABCELL $F $SIZE ok"
  say "$F $SIZE done at $(elapsed_s) s of $BUDGET_S"
done 3<"$D/inputs/plan.txt"
undeploy
echo "AB meta - l1_loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "AB meta - nproc $(grep -c ^processor /proc/cpuinfo)"
echo "AB meta - l1_elapsed_s $(elapsed_s)"
kill $NXD $S3PID 2>/dev/null; wait $NXD $S3PID 2>/dev/null
exit 0
