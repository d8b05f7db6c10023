#!/usr/bin/env bash
# Only the snapshot cases (tests/vm/in-l1-snapshot.sh) in one boot of the nested rig, for
# the cold-start measurements of docs/results-coldstart.md without the rest of make test-vm
# (which runs the same script among its cases).  Needs `make all guest-kernel guest-image`.
#   tests/vm/snapshot-rig.sh [BUILD]        SNAP_RUNS=N (default 5): runs per kind
# Prints the script's RESULT and COLDSTART lines; exit 0 when no RESULT line failed.
set -u
cd "$(dirname "$0")/../.."
B=${1:-build}
kernel=$B/guest/vmlinux image=$B/guest/rootfs.ext4
for f in "$kernel" "$image" "$B/bin/nexus-vmm" "$B/bin/nexusd" "$B/bin/nexus"; do
  [ -e "$f" ] || { echo "snapshot-rig: $f missing (make all guest-kernel guest-image)"; exit 2; }
done
hg=$B/tests/rig/http-get; [ -x "$hg" ] || hg=""
out=$(mktemp); trap 'rm -f "$out"' EXIT
# The C clock function of the snapshot:c-clock case (runtime provided: DIR/bootstrap), built by make.
make --no-print-directory BUILD="$B" "$B/vm-tests/c-clock/bootstrap" >/dev/null || { echo "snapshot-rig: building tests/vm/c-clock.c failed"; exit 2; }
# L1 sometimes stalls for good under TCG (issue 3): run-l1 exits 126; tried once more.
for attempt in 1 2; do
RIG_QEMU=${RIG_QEMU:-$PWD/tests/vm/qemu-l1.sh} rig/run-l1 --timeout "${SNAP_RIG_TIMEOUT:-1800}" --mem 2048 \
  --file "$B/bin/nexus-vmm:/rig/nexus-vmm" --file "$(readlink -f "$kernel"):/rig/vmlinux" \
  --file "$B/bin/nexusd:/rig/nexusd" --file "$B/bin/nexus:/rig/nexus" --file "$B/runtime:/rig/runtime" \
  --file functions/hello:/rig/hello --file "$(command -v mke2fs):/sbin/mkfs.ext4" \
  --disk "$(readlink -f "$image"),ro" \
  --file tests/vm/in-l1-snapshot.sh:/rig/in-l1-snapshot.sh ${hg:+--file "$hg:/rig/http-get"} \
  --file "$B/vm-tests/c-clock:/rig/c-clock" \
  -- sh -c "SNAP_RUNS=${SNAP_RUNS:-5} /rig/in-l1-snapshot.sh /rig /dev/vda" | tee "$out"
rc=${PIPESTATUS[0]}
[ "$rc" = 126 ] && [ "$attempt" = 1 ] || break
echo "snapshot-rig: L1 stalled (rig exit 126): once more in a fresh rig"
: >"$out"
done
echo "snapshot-rig: rig exit $rc; $(grep -c '^RESULT pass' "$out") passed, $(grep -c '^RESULT fail' "$out") failed"
[ "$rc" = 0 ] && ! grep -q '^RESULT fail' "$out" && grep -q '^RESULT pass' "$out"
