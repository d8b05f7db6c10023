#!/usr/bin/env bash
# bench/vm-ab: the A/B evaluation (nexus vs baseline) on the `vm` driver, both modes side by
# side and interleaved in ONE boot of the nested rig (rig/run-l1), then docs/results-vm-ab.md.
#   bench/vm-ab/run.sh [smoke|quick|full] [ROUNDS]
#     smoke: every function at 1 KiB (hello sizeless), <= 20 calls per round: checks the path
#     quick (default): hello + wordcount at 1 KiB, ROUNDS (3) x 100 calls per mode: a smoke run, ~15 min
#     full: every function x size of `nexus bench` (make_inputs.py), ROUNDS (3) rounds per cell,
#           calls per round scaled to the cost of a call (VM_AB_WARM_S seconds per mode and cell,
#           at least 1, at most 100 per round), the whole run cut to VM_AB_BUDGET_S seconds in L1
# Env: VM_AB_WARM_S (150), VM_AB_BUDGET_S (full 3300, quick 2400), VM_AB_OUT (the page),
#      VM_AB_LOG (the raw log, build/vm-ab/rig-PROFILE.log).
# Needs: make all guest-kernel guest-image vm-tests (s3tools disk: tests/vm/make-s3tools.sh),
# and /usr/bin/python3 with Pillow (python3-pil) for the image inputs.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROFILE=${1:-quick} ROUNDS=${2:-3} B=${BUILD:-build}
case $PROFILE in
  smoke) WARM_S=6 NMIN=1 NMAX=20 BUDGET_S=${VM_AB_BUDGET_S:-1200} ;;
  quick) WARM_S=1000000 NMIN=100 NMAX=100 BUDGET_S=${VM_AB_BUDGET_S:-2400} ;;
  full) WARM_S=${VM_AB_WARM_S:-150} NMIN=1 NMAX=100 BUDGET_S=${VM_AB_BUDGET_S:-3300} ;;
  *) echo "usage: bench/vm-ab/run.sh [smoke|quick|full] [ROUNDS]" >&2; exit 2 ;;
esac
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "vm-ab: ROUNDS must be a positive number" >&2; exit 2; }
OUTMD=${VM_AB_OUT:-docs/results-vm-ab.md}
log=${VM_AB_LOG:-$B/vm-ab/rig-$PROFILE.log}
inputs=$B/vm-ab/inputs-$PROFILE
mkdir -p "$(dirname "$log")"

# The cells and their input objects, as `nexus bench` makes them (seeded, same bytes).
/usr/bin/python3 bench/vm-ab/make_inputs.py "$inputs" "$PROFILE"

# The bridge modules for L1 (baseline mode's taps need a bridge): bench/vm-ab/bridge-mods.sh.
. bench/vm-ab/bridge-mods.sh
bridge_mods vm-ab

fns=()
for f in $(cut -d' ' -f1 "$inputs/plan.txt" | sort -u); do fns+=(--file "functions/$f:/rig/fn/$f"); done

started=$(date -u '+%Y-%m-%d %H:%M UTC')
host_load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "vm-ab: $PROFILE, $ROUNDS rounds, budget ${BUDGET_S} s in L1; raw log $log" >&2
set +e
# The inputs (23 MiB for full) travel in the initramfs: L1 gets 3 GiB (two 512 MiB guests + that).
RIG_QEMU=${RIG_QEMU:-$PWD/tests/vm/qemu-l1.sh} rig/run-l1 --timeout "${VM_AB_TIMEOUT:-$((BUDGET_S + 900))}" --mem 3072 \
  --file "$B/bin/nexus-vmm:/rig/nexus-vmm" --file "$(readlink -f "$B/guest/vmlinux"):/rig/vmlinux" \
  --file "$B/bin/nexusd:/rig/nexusd" --file "$B/bin/nexus:/rig/nexus" --file "$B/runtime:/rig/runtime" \
  --file "$B/bin/nexus-bench-load:/rig/nexus-bench-load" --file "$B/bin/nexus-s3peer:/rig/nexus-s3peer" \
  "${fns[@]}" --file "$inputs:/rig/inputs" \
  --file "$(command -v mke2fs):/sbin/mkfs.ext4" --file scripts/s3/rig-s3rver.sh:/rig/rig-s3rver.sh \
  --file bench/vm-ab/in-l1.sh:/rig/vm-ab.sh "${mods[@]}" \
  --disk "$(readlink -f "$B/guest/rootfs.ext4"),ro" --disk "$B/vm-tests/s3tools.ext4,ro" \
  -- sh -c "/rig/vm-ab.sh /rig /dev/vda $ROUNDS $WARM_S $NMIN $NMAX $BUDGET_S" | tee "$log"
rc=${PIPESTATUS[0]}
set -e
echo "AB meta - rig_exit $rc" >>"$log"
echo "AB meta - host_loadavg_start $host_load0" >>"$log"
echo "AB meta - host_loadavg_end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$log"
echo "AB meta - finished $(date -u '+%Y-%m-%d %H:%M UTC')" >>"$log"
[ "$rc" = 0 ] || echo "vm-ab: the rig exited $rc (124 timeout, 126 L1 stalled, 125 rig failure); the page shows what ran" >&2
# Even after a failed rig, the page is written from what the log holds (the rest is marked missing).
cmd="bench/vm-ab/run.sh $PROFILE $ROUNDS"   # as typed, with the settings that change the run
for v in VM_AB_WARM_S VM_AB_BUDGET_S; do [ -n "${!v:-}" ] && cmd="$v=${!v} $cmd"; done
/usr/bin/python3 bench/vm-ab/report.py "$log" "$OUTMD" "$started" "$cmd" "$inputs/plan.txt"
exit "$rc"
