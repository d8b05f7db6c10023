#!/usr/bin/env bash
# bench/vm-ab: the A/B evaluation's quick subset on the `vm` driver, nexus vs baseline side by
# side in ONE boot of the nested rig (rig/run-l1), then the page docs/results-vm-ab.md.
#   bench/vm-ab/run.sh [ROUNDS] [N]     (default 3 rounds x 100 warm invocations per mode)
# Needs: make all guest-kernel guest-image vm-tests (s3tools disk: tests/vm/make-s3tools.sh).
# The harness (bench/harness) itself needs Python + gnuplot + cgroups on the node, which L1
# (busybox) does not have; this wrapper measures the same quantities with shell in L1
# (bench/vm-ab/in-l1.sh says how) and nexus-bench-load for the warm loop.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3} N=${2:-100} B=${BUILD:-build}
OUTMD=${VM_AB_OUT:-docs/results-vm-ab.md}
log=${VM_AB_LOG:-$B/vm-ab/rig.log}
mkdir -p "$(dirname "$log")"

# L1's kernel has the bridge as a module and the rig loads only its L1_MODULES: bring
# llc/stp/bridge.ko of the same kernel package (apt-get download, cached).
mods=()
cache=${NEXUS_CACHE:-/var/cache/nexus}
kdir=$(ls -d "$cache"/rig-l1/linux-image-*/ 2>/dev/null | tail -n 1 || true)
if [ -n "$kdir" ] && [ ! -f "$kdir/modules/bridge.ko" ]; then
  pkg=$(basename "$kdir"); pkg=${pkg%%_*}
  md=$cache/vm-ab-mods/$pkg
  if [ ! -f "$md/bridge.ko" ]; then
    mkdir -p "$md/x"
    (cd "$md" && apt-get download -q "$pkg" >/dev/null 2>&1 && dpkg-deb -x "$pkg"_*.deb x &&
      for m in llc stp bridge; do cp "$(find x -name "$m.ko" | head -n 1)" .; done; rm -rf x "$pkg"_*.deb) ||
      echo "vm-ab: could not get the bridge module of $pkg (baseline will not run)" >&2
  fi
  for m in llc stp bridge; do [ -f "$md/$m.ko" ] && mods+=(--file "$md/$m.ko:/rig/mods/$m.ko"); done
fi

started=$(date -u '+%Y-%m-%d %H:%M UTC')
RIG_QEMU=${RIG_QEMU:-$PWD/tests/vm/qemu-l1.sh} rig/run-l1 --timeout "${VM_AB_TIMEOUT:-3000}" --mem 2048 \
  --file "$B/bin/nexus-vmm:/rig/nexus-vmm" --file "$(readlink -f "$B/guest/vmlinux"):/rig/vmlinux" \
  --file "$B/bin/nexusd:/rig/nexusd" --file "$B/bin/nexus:/rig/nexus" --file "$B/runtime:/rig/runtime" \
  --file "$B/bin/nexus-bench-load:/rig/nexus-bench-load" --file "$B/bin/nexus-s3peer:/rig/nexus-s3peer" \
  --file functions/hello:/rig/hello --file functions/wordcount:/rig/wordcount \
  --file "$(command -v mke2fs):/sbin/mkfs.ext4" --file scripts/s3/rig-s3rver.sh:/rig/rig-s3rver.sh \
  --file bench/vm-ab/in-l1.sh:/rig/vm-ab.sh "${mods[@]}" \
  --disk "$(readlink -f "$B/guest/rootfs.ext4"),ro" --disk "$B/vm-tests/s3tools.ext4,ro" \
  -- sh -c "/rig/vm-ab.sh /rig /dev/vda $ROUNDS $N" | tee "$log"
/usr/bin/python3 bench/vm-ab/report.py "$log" "$OUTMD" "$started" "bench/vm-ab/run.sh $ROUNDS $N"
