#!/bin/sh
# Density on the `vm` driver, in L1 of rig/run-l1 (busybox sh).  POSIX sh.  Started by
# bench/vm-density/run.sh, which writes the traces on the host (report.py traces) and the page
# from what this prints (report.py).
#
#   in-l1.sh DIR ROOTFS
# DIR: nexusd, nexus, nexus-vmm, vmlinux, runtime/, fn/hello/, nexus-bench-load, nexus-s3peer,
# mods/{llc,stp,bridge}.ko, traces/ (params.txt + step-N-MODE.txt, bench/harness/trace.py's
# format: "T_US FUNCTION PAYLOAD").
#
# The rule of bench/harness/density.py, on one nexusd with the vm driver: N `hello` functions
# per mode (dens-MODE-0..N-1, --memory 128, --max-instances 1), each warmed by one call; both
# modes climb the ladder in lockstep (nexus, then baseline, at each N); the baseline's N=1 step
# runs CAL_RUNS times and the SLO is SLO_FACTOR x the largest of those p99s; a step passes when
# its p99 <= SLO and no request failed; a failing step runs once more right away; a mode stops
# after its failure.  The instances stay deployed to the end (both modes' VMs share L1).
# Snapshots are off: a snapshot key includes the function name, so every dens-nexus-I would
# boot fresh anyway and write its own 128 MiB memory file into L1's RAM (initramfs).
#
# Raw lines for report.py (raw values; report.py recomputes the statistics and the rule):
#   DMETA KEY VALUE...                  parameters and conditions
#   DWARM MODE I MS RC [TEXT]           the warm-up call of dens-MODE-I (RC 0 = ok)
#   DINST MODE I PID RSS_KB PSS_KB      its monitor (nexus-vmm) right after the warm-up
#   DLAT MODE N RUN STATUS:NS...        every request of a run (RUN: 1, 2 = the rerun, cal1..3)
#   DRUN MODE N RUN REQUESTS FAILED P50_MS P99_MS LOADGEN_RC SECONDS   L1's own reckoning
#   DMEM MODE N RUN MONITORS RSS_KB PSS_KB   the mode's live monitors after the run
#   DL1 MODE N RUN MEMTOTAL_KB MEMAVAIL_KB MEMFREE_KB LOAD1
#   DIDLE MODE N RUN SECONDS(.d) NEXUS_VMS NEXUS_TICKS BASELINE_VMS BASELINE_TICKS L1_BUSY_PERMILLE
#                                       just before the run, no request in flight: the CPU
#                                       (USER_HZ ticks) all monitors of each mode used over SECONDS,
#                                       and how busy L1's CPUs were (idle VMs are not free in L1)
#   DTHREADS MODE N RUN WHICH PID COMM:TICKS...  the same window per thread, for the first
#                                       monitor of mode WHICH (where an idle VM's CPU goes)
#   DSPEED MODE N RUN MS                a fixed awk loop timed just before the run: how fast L1
#                                       ran then (the host's other rigs and builds slow it down)
#   DSLO SLO_MS CAL_P99_MS...           | DDECIDE MODE N pass|fail|rerun
#   DSTOP REASON                        the climb stopped early (budget, deploy failure)
#   DEND ELAPSED_S                      reached the end
# and "INFO hh:mm:ss ..." progress lines.
set -u
D=$1 ROOT=$2
PORT=9079 S3PORT=9080 MEM_MB=128 FN_TIMEOUT=60
S=/tmp/vmdens
say() { echo "INFO $(date +%H:%M:%S) $*"; }
rm -rf $S; mkdir -p $S/rootfs $S/home
# params.txt: "LADDER RATE CAL_S STEP_S CAL_RUNS SLO_FACTOR BUDGET_S" (LADDER comma-separated)
read -r LADDER RATE CAL_S STEP_S CAL_RUNS SLO_FACTOR BUDGET_S <"$D/traces/params.txt" ||
  { echo "DSTOP no traces/params.txt"; exit 0; }

now_ms() {
  n=$(date +%s%N 2>/dev/null)
  case "$n" in *N|'') awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime ;; *) echo $((n / 1000000)) ;; esac
}
T_START=$(now_ms)
elapsed_s() { echo $(( ($(now_ms) - T_START) / 1000 )); }

echo "DMETA ladder $LADDER"
echo "DMETA rate $RATE"
echo "DMETA cal_s $CAL_S"
echo "DMETA step_s $STEP_S"
echo "DMETA cal_runs $CAL_RUNS"
echo "DMETA slo_factor $SLO_FACTOR"
echo "DMETA budget_s $BUDGET_S"
echo "DMETA guest_memory_mb $MEM_MB"
echo "DMETA nproc $(grep -c ^processor /proc/cpuinfo)"
echo "DMETA l1_memtotal_kb $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
echo "DMETA snapshots off"

if [ ! -d /sys/module/bridge ]; then
  for m in llc stp bridge; do [ -f "$D/mods/$m.ko" ] && insmod "$D/mods/$m.ko" 2>/dev/null; done
fi
[ -d /sys/module/bridge ] || echo "DMETA warning no bridge module in L1: baseline instances cannot start"

"$D/nexus-s3peer" --address 127.0.0.1 --port $S3PORT --threads 1 >$S/s3peer.log 2>&1 &
S3PID=$!
export NEXUS_HOME=$S/home NEXUS_PORT=$PORT NEXUS_S3_PORT=$S3PORT
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3
AWS_ENDPOINT_URL_S3=http://127.0.0.1:$S3PORT AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 \
NEXUS_VM_SNAPSHOT=off NEXUS_VMM="$D/nexus-vmm" NEXUS_GUEST_KERNEL="$D/vmlinux" NEXUS_GUEST_IMAGE="$ROOT" \
  "$D/nexusd" --listen 127.0.0.1:$PORT --state-dir $S/state --runtime-dir "$D/runtime" \
  --rootfs $S/rootfs --keep-alive 7200 --init-timeout "${NEXUS_INIT_TIMEOUT:-120}" >$S/nexusd.log 2>&1 &
NXD=$!
i=0; while [ $i -lt 60 ] && ! grep -qs 'ready on' $S/nexusd.log; do sleep 1; i=$((i + 1)); done
grep -qs 'ready on' $S/nexusd.log || { echo "DSTOP nexusd did not start: $(tail -n 3 $S/nexusd.log | tr '\n' ' ' | cut -c1-300)"; exit 0; }
URL=http://127.0.0.1:$PORT
echo '{"name": "warm"}' >$S/warm.json

# The function a monitor runs: its guest command line carries AWS_LAMBDA_FUNCTION_NAME verbatim
# (sandbox_vm.c percent-encodes only spaces, controls, '%' and '"').
fn_of() { tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -o 'AWS_LAMBDA_FUNCTION_NAME=dens-[a-z]*-[0-9]*' | head -n 1 | cut -d= -f2; }
monitors() { for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = nexus-vmm ] && echo "${p#/proc/}"; done; }
smaps() { awk '/^(Rss|Pss):/ { v[$1] = $2 } END { printf "%d %d\n", v["Rss:"], v["Pss:"] }' "/proc/$1/smaps_rollup" 2>/dev/null || echo "0 0"; }

deployed_nexus=0 deployed_baseline=0
# Deploy and warm dens-MODE-I for I in [have, n).  Sets DEPLOY_ERR on a failed deploy.
grow() {   # MODE N
  eval have=\$deployed_$1
  DEPLOY_ERR=
  while [ "$have" -lt "$2" ]; do
    name=dens-$1-$have
    if ! "$D/nexus" deploy "$D/fn/hello" --name $name --mode $1 --sandbox vm --timeout $FN_TIMEOUT \
         --memory $MEM_MB --max-instances 1 >$S/deploy.log 2>&1; then
      DEPLOY_ERR="deploy $name: $(tr '\n' ' ' <$S/deploy.log | cut -c1-200)"; return
    fi
    t0=$(now_ms)
    "$D/nexus" invoke $name --payload @$S/warm.json --cli-timeout 300 >$S/resp 2>&1; rc=$?
    if [ $rc != 0 ] && grep -Eqs 'Runtime failed to start|not ready within' $S/resp; then
      say "$name: warm-up failed to start ($(tr '\n' ' ' <$S/resp | cut -c1-150)); once more"
      "$D/nexus" invoke $name --payload @$S/warm.json --cli-timeout 300 >$S/resp 2>&1; rc=$?
    fi
    ms=$(( $(now_ms) - t0 ))
    echo "DWARM $1 $have $ms $rc $(tr '\n' ' ' <$S/resp | cut -c1-160)"
    for p in $(monitors); do
      [ "$(fn_of $p)" = $name ] && echo "DINST $1 $have $p $(smaps $p)"
    done
    say "warmed $name in $ms ms (exit $rc), $(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo) MiB available in L1"
    have=$((have + 1))
    eval deployed_$1=$have
  done
}

# CPU ticks (utime+stime, all threads) of a process.
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# "VMS TICKS" of every monitor of MODE, and L1's "BUSY TOTAL" jiffies from /proc/stat.
mode_ticks() { c=0 t=0; for p in $(monitors); do case "$(fn_of $p)" in dens-$1-*) c=$((c + 1)) t=$((t + $(ticks $p))) ;; esac; done; echo "$c $t"; }
l1_jiffies() { awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6; exit }' /proc/stat; }
thread_ticks() { for d in /proc/$1/task/*; do echo "${d##*/} $(tr ' ' _ <$d/comm 2>/dev/null) $(ticks "${d#/proc/}")"; done; }
first_of() { for p in $(monitors); do case "$(fn_of $p)" in dens-$1-*) echo $p; return ;; esac; done; }
idle_sample() {   # MODE N RUN
  pn=$(first_of nexus) pb=$(first_of baseline)
  [ -n "$pn" ] && thread_ticks $pn >$S/thr-nexus
  [ -n "$pb" ] && thread_ticks $pb >$S/thr-baseline
  # the window is timed: under load the /proc scans around the 5 s sleep take seconds too
  t0=$(now_ms) a=$(mode_ticks nexus) b=$(mode_ticks baseline) j=$(l1_jiffies)
  sleep 5
  a2=$(mode_ticks nexus) b2=$(mode_ticks baseline) j2=$(l1_jiffies) t1=$(now_ms)
  for w in nexus baseline; do
    eval p=\$p${w%${w#?}}
    [ -n "$p" ] || continue
    thread_ticks $p >$S/thr2
    echo "DTHREADS $1 $2 $3 $w $p $(awk 'NR == FNR { t[$1] = $3; next } { printf "%s:%d ", $2, $3 - t[$1] }' $S/thr-$w $S/thr2)"
  done
  echo "DIDLE $1 $2 $3 $(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 )) ${a2% *} $(( ${a2#* } - ${a#* } )) ${b2% *} $(( ${b2#* } - ${b#* } )) $(( (${j2% *} - ${j% *}) * 1000 / (${j2#* } - ${j#* } + 1) ))"
}

# One open-loop run of MODE's step N with the host-made trace.  Sets P99 (ms) and FAILED.
run_step() {   # MODE N RUN
  tr=$D/traces/step-$2-$1.txt
  : >$S/open.out
  idle_sample "$1" "$2" "$3"
  t0=$(now_ms); awk 'BEGIN { for (i = 0; i < 300000; i++) s += i * i }'
  echo "DSPEED $1 $2 $3 $(( $(now_ms) - t0 ))"
  t0=$(now_ms)
  "$D/nexus-bench-load" open $URL "$tr" $S/open.out >$S/load.out 2>$S/load.err; lrc=$?
  secs=$(( ($(now_ms) - t0) / 1000 ))
  echo "DLAT $1 $2 $3 $(awk '{ printf "%s:%s ", $3, $2 }' $S/open.out)"
  # L1's reckoning, the harness's percentile (report.pct: sorted[min(n-1, int(n*p/100))]);
  # a request that never came back (the load generator died) counts as failed.
  want=$(grep -c . "$tr") got=$(grep -c . $S/open.out)
  bad=$(awk '$3 != 200 { f++ } END { print f + 0 }' $S/open.out)
  FAILED=$((bad + want - got)); [ $lrc = 0 ] || [ $FAILED -gt 0 ] || FAILED=1
  sort -n -k2,2 $S/open.out | awk '{ v[NR] = $2 / 1e6 } END {
      if (!NR) { print "- inf"; exit }
      i50 = int(NR * 50 / 100); if (i50 > NR - 1) i50 = NR - 1
      i99 = int(NR * 99 / 100); if (i99 > NR - 1) i99 = NR - 1
      printf "%.3f %.3f\n", v[i50 + 1], v[i99 + 1] }' >$S/pct
  read -r p50 p99 <$S/pct
  P99=$p99
  echo "DRUN $1 $2 $3 $want $FAILED $p50 $p99 $lrc $secs"
  # The mode's monitors (every live nexus-vmm whose guest runs a dens-MODE-* function).
  cnt=0 rss=0 pss=0
  for p in $(monitors); do
    case "$(fn_of $p)" in dens-$1-*) ;; *) continue ;; esac
    m=$(smaps $p)
    cnt=$((cnt + 1)) rss=$((rss + ${m% *})) pss=$((pss + ${m#* }))
  done
  echo "DMEM $1 $2 $3 $cnt $rss $pss"
  echo "DL1 $1 $2 $3 $(awk '/^MemTotal:/ { t = $2 } /^MemAvailable:/ { a = $2 } /^MemFree:/ { f = $2 } END { print t, a, f }' /proc/meminfo) $(cut -d' ' -f1 /proc/loadavg)"
  say "$1 N=$2 run $3: $want requests, $FAILED failed, p50 $p50 ms, p99 $p99 ms, ${secs} s; $cnt monitors, PSS $((pss / 1024)) MiB; $(head -c 150 $S/load.err)"
}

# p99 <= SLO and no failure (p99 is "inf" when no request came back; so is the SLO then).
passes() { awk -v p="$1" -v s="$SLO" -v f="$2" 'BEGIN { exit !(f == 0 && p != "inf" && s != "inf" && p + 0 <= s + 0) }'; }

alive_nexus=1 alive_baseline=1 SLO=
for n in $(echo "$LADDER" | tr ',' ' '); do
  if [ "$(elapsed_s)" -ge "$BUDGET_S" ]; then
    echo "DSTOP time budget of $BUDGET_S s in L1 used up before N=$n"; break
  fi
  for mode in nexus baseline; do
    eval a=\$alive_$mode; [ "$a" = 1 ] || continue
    say "$mode N=$n: deploying and warming up to $n instances"
    grow $mode $n
    if [ -n "$DEPLOY_ERR" ]; then echo "DSTOP $DEPLOY_ERR"; break 2; fi
    if [ -z "$SLO" ] && [ $mode = baseline ]; then
      # the step is its worst calibration run (the largest p99), as in density.py
      c=1 cal= worst=
      while [ $c -le "$CAL_RUNS" ]; do
        run_step baseline $n cal$c; cal="$cal $P99" c=$((c + 1))
        if [ -z "$worst" ] || awk -v a="$P99" -v b="${worst% *}" 'BEGIN { exit !(a == "inf" || (b != "inf" && a + 0 > b + 0)) }'; then
          worst="$P99 $FAILED"
        fi
      done
      P99=${worst% *} FAILED=${worst#* }
      SLO=$(echo $cal | awk -v k="$SLO_FACTOR" '{ m = -1; for (i = 1; i <= NF; i++) { if ($i == "inf") { m = "inf"; break } if ($i + 0 > m) m = $i + 0 }
        if (m == "inf") print "inf"; else printf "%.3f\n", k * m }')
      echo "DSLO $SLO$cal"
      say "SLO $SLO ms = $SLO_FACTOR x the largest of the baseline N=1 p99s:$cal ms"
    else
      run_step $mode $n 1
    fi
    eval r_$mode=\"\$P99 \$FAILED\"
  done
  # Judge both modes' step N (the nexus N=1 step is judged only now that the SLO exists).
  for mode in nexus baseline; do
    eval a=\$alive_$mode; [ "$a" = 1 ] || continue
    eval set -- \$r_$mode
    if passes "$1" "$2"; then echo "DDECIDE $mode $n pass"; continue; fi
    echo "DDECIDE $mode $n rerun"
    run_step $mode $n 2
    if passes "$P99" "$FAILED"; then echo "DDECIDE $mode $n pass"
    else echo "DDECIDE $mode $n fail"; eval alive_$mode=0; fi
  done
  [ $alive_nexus = 0 ] && [ $alive_baseline = 0 ] && break
done
echo "DMETA l1_loadavg_end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "DEND $(elapsed_s)"
kill $NXD $S3PID 2>/dev/null; wait $NXD $S3PID 2>/dev/null
exit 0
