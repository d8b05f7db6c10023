#!/usr/bin/env bash
# make bench-vmm: nexus-vmm vs qemu-system-x86_64 -M microvm, same kernel (bzImage) and
# rootfs, inside the nested rig.  Prints medians (min..max) and ratios; raw lines in
# $BUILD/bench-vmm/results.txt.  RUNS=N (default 5) boots per monitor.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/../.."
for f in "$build/bin/nexus-vmm" "$build/guest/bzImage" "$build/guest/rootfs.ext4" \
         "$build/bench-vmm/vmm-bench" "$build/bench-vmm/kvm_run_probe.so"; do
  [ -e "$f" ] || { echo "bench-vmm: missing $f (make vmm guest-kernel rootfs)" >&2; exit 1; }
done
out=$build/bench-vmm/results.txt
rig/run-l1 --timeout 1800 --mem 3072 \
  --file "$build/bin/nexus-vmm:/rig/nexus-vmm" --file "$build/guest/bzImage:/rig/bzImage" \
  --file "$build/bench-vmm/vmm-bench:/rig/vmm-bench" --file "$build/bench-vmm/kvm_run_probe.so:/rig/kvm_run_probe.so" \
  --file /usr/bin/qemu-system-x86_64:/rig/qemu-system-x86_64 \
  --file /usr/share/qemu/bios-microvm.bin:/usr/share/qemu/ --file /usr/share/qemu/qboot.rom:/usr/share/qemu/ \
  --file /usr/share/qemu/linuxboot_dma.bin:/usr/share/qemu/ --file /usr/share/qemu/pvh.bin:/usr/share/qemu/ \
  --file bench/vmm/in-l1.sh:/rig/in-l1.sh --disk "$build/guest/rootfs.ext4,ro" \
  -- env RUNS="${RUNS:-5}" sh /rig/in-l1.sh >"$out.raw" 2>&1 || true
grep -E '^(nexus-vmm|qemu-microvm) ' "$out.raw" >"$out" || { cat "$out.raw"; echo "bench-vmm: no results" >&2; exit 1; }
grep '^rig:' "$out.raw" || true
/usr/bin/python3 - "$out" <<'PY'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    d = dict(kv.split("=") for kv in f[1:])
    rows.setdefault(f[0], []).append({k: float(v) for k, v in d.items()})
metrics = [("setup_wall_ms", "setup wall (start -> first KVM_RUN), ms"),
           ("setup_cpu_ms", "setup CPU (start -> first KVM_RUN), ms"),
           ("init_ms", "start -> guest init, wall ms"),
           ("own_kib", "monitor RSS minus guest RAM touched, KiB"),
           ("guest_kib", "guest RAM touched (memfd RSS), KiB")]
def s(v): return "%.1f (%.1f..%.1f)" % (st.median(v), min(v), max(v))
print("| metric | nexus-vmm median (min..max) | qemu microvm median (min..max) | nexus/qemu |")
print("|---|---|---|---|")
for k, name in metrics:
    a = [r[k] for r in rows.get("nexus-vmm", []) if r[k] >= 0]
    b = [r[k] for r in rows.get("qemu-microvm", []) if r[k] >= 0]
    if a and b:
        print("| %s | %s | %s | %.2f |" % (name, s(a), s(b), st.median(a) / st.median(b)))
for m, rs in rows.items():
    print("%s: %d runs, exit codes %s" % (m, len(rs), sorted({int(r["exit"]) for r in rs})))
PY
