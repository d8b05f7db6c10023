#!/usr/bin/env bash
# bench/vm: the channel's null round trip guest -> host peer (nexusd's chan.c) -> guest in a
# microVM, with the KVM exits per round trip.  In the nested rig here (bench/vm/README.md).
#   bench/vm/run.sh [N]      (after `make vmm guest-kernel guest-image vm-tests build/bin/guest-realhost`)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-4000} B=${BUILD:-build}
out=$(mktemp); trap 'rm -f "$out"' EXIT
RIG_QEMU=${RIG_QEMU:-$PWD/tests/vm/qemu-l1.sh} rig/run-l1 --timeout 900 \
  --file "$B/bin/nexus-vmm:/rig/nexus-vmm" --file "$B/bin/guest-realhost:/rig/guest-realhost" \
  --file "$(readlink -f "$B/guest/vmlinux"):/rig/vmlinux" --file bench/vm/in-l1.sh:/rig/in-l1.sh \
  --file "$B/vm-tests/disk/tcp-pingpong:/rig/tcp-pingpong" --file "$(command -v ip || echo /usr/sbin/ip):/rig/ip" \
  --disk "$(readlink -f "$B/guest/rootfs.ext4"),ro" --disk "$B/vm-tests/tests.ext4,ro" \
  -- /rig/in-l1.sh /rig /dev/vda /dev/vdb "$N" | tee "$out"
/usr/bin/python3 - "$out" "$N" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines(); n = int(sys.argv[2])
def stats(tag, k):
    for l in lines:
        if l.startswith(f"BENCH n={k} ") and f" {tag}:" in l:
            return dict(re.findall(r"(\w+)=(\d+)", l.split(f"{tag}:", 1)[1]))
d = {}
for k in (0, n):
    b, a = stats("before", k), stats("after", k)
    if not b or not a: sys.exit("bench/vm: missing counters for n=%d" % k)
    d[k] = {s: int(a[s]) - int(b[s]) for s in a}
print("exits per null round trip (KVM counters in L1, run with %d round trips minus run with 0):" % n)
for s in d[n]:
    print("  %-15s %.2f" % (s, (d[n][s] - d[0][s]) / n))
for l in lines:
    if l.startswith("BENCH n=%d vmtest:" % n): print("channel: " + l.split("vmtest: ", 1)[1])
for l in lines:
    if l.startswith("BENCH tcp"):
        print(l[len("BENCH "):])
        m = dict(re.findall(r"(\w+)=(\d+)", l))
        if "exits" in m and int(m.get("n", 0)):
            k = int(m["n"])
            print("  per TCP round trip: exits %.2f, io_exits %.2f, mmio_exits %.2f, irq_injections %.2f" % tuple(
                int(m[s]) / k for s in ("exits", "io_exits", "mmio_exits", "irq_injections")))
PY
