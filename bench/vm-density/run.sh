#!/usr/bin/env bash
# bench/vm-density: density (nexus vs baseline) on the `vm` driver, in ONE boot of the nested
# rig (rig/run-l1), then docs/results-vm-density.md.  bench/vm-density/README.md.
#   bench/vm-density/run.sh [quick|full]
#     quick: ladder 1,2,4, short steps: checks the path (~10 min)
#     full (default): ladder 1,2,3,4,6,8,10,12 at 4 requests/s per instance (~25 min in L1)
# Env: VM_DENSITY_OUT (the page), VM_DENSITY_LOG (the raw log, build/vm-density/rig-PROFILE.log),
#      VM_DENSITY_MEM (L1's RAM in MiB, 3072), VM_DENSITY_TIMEOUT (the rig's limit, s).
# Needs: make all guest-kernel guest-image.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROFILE=${1:-full} B=${BUILD:-build}
case $PROFILE in quick|full) ;; *) echo "usage: bench/vm-density/run.sh [quick|full]" >&2; exit 2 ;; esac
OUTMD=${VM_DENSITY_OUT:-docs/results-vm-density.md}
log=${VM_DENSITY_LOG:-$B/vm-density/rig-$PROFILE.log}
traces=$B/vm-density/traces-$PROFILE
mkdir -p "$(dirname "$log")"
for f in bin/nexus-vmm bin/nexusd bin/nexus bin/nexus-bench-load bin/nexus-s3peer guest/vmlinux guest/rootfs.ext4; do
  [ -e "$B/$f" ] || { echo "vm-density: $B/$f missing (make all guest-kernel guest-image)" >&2; exit 2; }
done

# The traces of every ladder step, from bench/harness/trace.py (seed 2019), and params.txt.
rm -rf "$traces"
/usr/bin/python3 bench/vm-density/report.py traces "$traces" "$PROFILE"
budget=$(cut -d' ' -f7 "$traces/params.txt")

# The bridge modules for L1 (baseline mode's taps need a bridge): bench/vm-ab/bridge-mods.sh.
. bench/vm-ab/bridge-mods.sh
bridge_mods vm-density

started=$(date -u '+%Y-%m-%d %H:%M UTC')
host_load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "vm-density: $PROFILE, budget ${budget} s in L1; raw log $log" >&2
# The host's 1-minute load every 30 s (other engineers' rigs and builds share the 2 cores).
(while sleep 30; do echo "DHOSTLOAD $(date -u +%H:%M:%S) $(cut -d' ' -f1 /proc/loadavg)"; done) >"$log.hostload" &
sampler=$!
set +e
# L1 RAM: a warm 128 MiB hello guest touches ~40 (nexus) / ~50 (baseline) MiB (PSS of its
# nexus-vmm, measured per instance in the log), so 2 x 12 VMs need ~1.1 GiB; 3 GiB leaves
# room for L1 itself, nexusd and the per-instance disk images (README.md).
RIG_QEMU=${RIG_QEMU:-$PWD/tests/vm/qemu-l1.sh} rig/run-l1 --timeout "${VM_DENSITY_TIMEOUT:-$((budget + 1200))}" \
  --mem "${VM_DENSITY_MEM:-3072}" \
  --file "$B/bin/nexus-vmm:/rig/nexus-vmm" --file "$(readlink -f "$B/guest/vmlinux"):/rig/vmlinux" \
  --file "$B/bin/nexusd:/rig/nexusd" --file "$B/bin/nexus:/rig/nexus" --file "$B/runtime:/rig/runtime" \
  --file "$B/bin/nexus-bench-load:/rig/nexus-bench-load" --file "$B/bin/nexus-s3peer:/rig/nexus-s3peer" \
  --file functions/hello:/rig/fn/hello --file "$traces:/rig/traces" \
  --file "$(command -v mke2fs):/sbin/mkfs.ext4" \
  --file bench/vm-density/in-l1.sh:/rig/vm-density.sh "${mods[@]}" \
  --disk "$(readlink -f "$B/guest/rootfs.ext4"),ro" \
  -- sh -c "/rig/vm-density.sh /rig /dev/vda" | tee "$log"
rc=${PIPESTATUS[0]}
set -e
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
cat "$log.hostload" >>"$log"; rm -f "$log.hostload"
{
  echo "DHOST rig_exit $rc"
  echo "DHOST host_loadavg_start $host_load0"
  echo "DHOST host_loadavg_end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "DHOST finished $(date -u '+%Y-%m-%d %H:%M UTC')"
} >>"$log"
[ "$rc" = 0 ] || echo "vm-density: the rig exited $rc (124 timeout, 126 L1 stalled, 125 rig failure); the page shows what ran" >&2
# Even after a failed rig, the page is written from what the log holds (the rest is marked missing).
/usr/bin/python3 bench/vm-density/report.py page "$log" "$OUTMD" "$PROFILE" "$started" "bench/vm-density/run.sh $PROFILE"
exit "$rc"
