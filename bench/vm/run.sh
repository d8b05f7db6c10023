#!/usr/bin/env bash
# bench/vm: the channel's null round trip guest -> host peer (nexusd's chan.c) -> guest in a
# microVM, with the KVM exits per round trip.  In the nested rig here (bench/vm/README.md).
# Then, in the same boot, a 1 MiB get_object through the shim against real boto3 over virtio-net
# (in-l1-s3get.sh), GETS of each.
#   bench/vm/run.sh [N] [GETS]   (after `make vmm guest-kernel guest-image vm-tests runtime
#                                 build/bin/guest-realhost build/bin/nexusd build/bin/nexus`)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-4000} G=${2:-30} B=${BUILD:-build}
out=$(mktemp); trap 'rm -f "$out"' EXIT
RIG_QEMU=${RIG_QEMU:-$PWD/tests/vm/qemu-l1.sh} rig/run-l1 --timeout 900 \
  --file "$B/bin/nexus-vmm:/rig/nexus-vmm" --file "$B/bin/guest-realhost:/rig/guest-realhost" \
  --file "$(readlink -f "$B/guest/vmlinux"):/rig/vmlinux" --file bench/vm/in-l1.sh:/rig/in-l1.sh \
  --file "$B/vm-tests/disk/tcp-pingpong:/rig/tcp-pingpong" --file "$(command -v ip || echo /usr/sbin/ip):/rig/ip" \
  --file "$B/bin/nexusd:/rig/nexusd" --file "$B/bin/nexus:/rig/nexus" --file "$B/runtime:/rig/runtime" \
  --file "$(command -v mke2fs):/sbin/mkfs.ext4" --file bench/vm/s3get:/rig/s3get \
  --file scripts/s3/rig-s3rver.sh:/rig/rig-s3rver.sh --file bench/vm/in-l1-s3get.sh:/rig/in-l1-s3get.sh \
  --disk "$(readlink -f "$B/guest/rootfs.ext4"),ro" --disk "$B/vm-tests/tests.ext4,ro" \
  --disk "$B/vm-tests/s3tools.ext4,ro" \
  -- sh -c "/rig/in-l1.sh /rig /dev/vda /dev/vdb $N; unshare -n /rig/in-l1-s3get.sh /rig /dev/vda /dev/vdb $G" | tee "$out"
/usr/bin/python3 - "$out" "$N" <<'PY'
import json, re, statistics, sys
lines = open(sys.argv[1]).read().splitlines(); n = int(sys.argv[2])
def stats(tag, k):
    for l in lines:
        if l.startswith(f"BENCH n={k} ") and f" {tag}:" in l:
            return dict(re.findall(r"(\w+)=(\d+)", l.split(f"{tag}:", 1)[1]))
d = {}
for k in (0, n):
    b, a = stats("before", k), stats("after", k)
    if b and a: d[k] = {s: int(a[s]) - int(b[s]) for s in a}
if len(d) == 2:
    print("exits per null round trip (KVM counters in L1, run with %d round trips minus run with 0):" % n)
    for s in d[n]:
        print("  %-15s %.2f" % (s, (d[n][s] - d[0][s]) / n))
else:
    print("bench/vm: missing channel counters (see the BENCH lines above)")
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
# The 1 MiB get_object, shim vs boto3: per-GET times from the guest, exits per GET from the
# counters around the request with GETS GETs minus those around the request with 0.
def side(name):
    got = {}
    for l in lines:
        m = re.match(r"BENCH s3get %s n=(\d+) (before|after|json):?\s*(.*)$" % re.escape(name), l)
        if m:
            got.setdefault(int(m[1]), {})[m[2]] = m[3]
    return got
for name, what in (("shim", "get_object through the shim (nexus mode, Nexus device -> nexusd -> s3rver)"),
                   ("boto3", "get_object with real boto3 over virtio-net + tap -> s3rver")):
    runs = side(name)
    big = [k for k in runs if k > 0]
    if 0 not in runs or not big:
        print("s3get %s: not measured (see BENCH s3get lines above)" % name); continue
    g = max(big)
    try:
        res = json.loads(runs[g]["json"])
    except (KeyError, ValueError):
        print("s3get %s: no result: %r" % (name, runs[g].get("json"))); continue
    us = res["us"]
    delta = {}
    for k in (0, g):
        b = dict(re.findall(r"(\w+)=(\d+)", runs[k]["before"])); a = dict(re.findall(r"(\w+)=(\d+)", runs[k]["after"]))
        delta[k] = {s: int(a[s]) - int(b[s]) for s in a}
    per = {s: (delta[g][s] - delta[0][s]) / g for s in delta[g]}
    print("s3get %s: %s" % (name, what))
    print("  %d GETs of %d bytes: median %.0f us, min %.0f, max %.0f  (boto3 module: %s)" % (
        len(us), res["bytes"], statistics.median(us), min(us), max(us), res["boto3"]))
    print("  VM exits per GET: " + ", ".join("%s %.1f" % kv for kv in per.items()))
PY
