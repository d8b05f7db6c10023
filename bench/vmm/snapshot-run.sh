#!/usr/bin/env bash
# make bench-vmm-snapshot: nexus-vmm's snapshot load time for a 128 MiB guest, with and
# without the working-set prefetch (--ws), inside the nested rig.  Prints medians
# (min..max); raw lines in $BUILD/bench-vmm/snapshot-results.txt.  RUNS=N (default 10).
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/../.."
for f in "$build/bin/nexus-vmm" "$build/guest/bzImage" "$build/guest/rootfs.ext4" \
         "$build/bench-vmm/snap-bench" "$build/bench-vmm/kvm_run_probe.so"; do
  [ -e "$f" ] || { echo "bench-vmm-snapshot: missing $f (make vmm guest-kernel rootfs)" >&2; exit 1; }
done
out=$build/bench-vmm/snapshot-results.txt
rig/run-l1 --timeout 1800 --mem 2048 \
  --file "$build/bin/nexus-vmm:/rig/nexus-vmm" --file "$build/guest/bzImage:/rig/bzImage" \
  --file "$build/bench-vmm/snap-bench:/rig/snap-bench" --file "$build/bench-vmm/kvm_run_probe.so:/rig/kvm_run_probe.so" \
  --disk "$build/guest/rootfs.ext4,ro" \
  -- /rig/snap-bench /rig/nexus-vmm /rig/kvm_run_probe.so /rig/bzImage /dev/vda /tmp/snap-bench "${RUNS:-10}" \
  >"$out.raw" 2>&1 || true
grep -E '^(snapshot|restore|restore-ws) ' "$out.raw" >"$out" || { cat "$out.raw"; echo "bench-vmm-snapshot: no results" >&2; exit 1; }
grep '^rig:' "$out.raw" || true
/usr/bin/python3 - "$out" <<'PY'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[0], []).append({k: float(v) for k, v in (kv.split("=") for kv in f[1:])})
for r in rows.get("snapshot", []):
    print("snapshot: %.1f ms, %.1f MiB of RAM written" % (r["ms"], r["memory_bytes"] / 2**20))
def s(v): return "%.1f (%.1f..%.1f)" % (st.median(v), min(v), max(v)) if v else "-"
print("| metric | restore | restore --ws |")
print("|---|---|---|")
for k, name in [("setup_wall_ms", "process start -> first KVM_RUN, wall ms"),
                ("setup_cpu_ms", "process start -> first KVM_RUN, CPU ms"),
                ("first_output_ms", "process start -> guest's first console line, wall ms"),
                ("rss_kib", "monitor RSS at that line, KiB")]:
    a = [r[k] for r in rows.get("restore", []) if r[k] >= 0]
    b = [r[k] for r in rows.get("restore-ws", []) if r[k] >= 0]
    print("| %s | %s | %s |" % (name, s(a), s(b)))
print("runs: %d restore, %d restore --ws" % (len(rows.get("restore", [])), len(rows.get("restore-ws", []))))
PY
