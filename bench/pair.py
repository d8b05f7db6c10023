#!/usr/bin/python3
"""One function at one input size, nexus against baseline, each in a fresh
instance, measured in isolation: a check on a single pair of `nexus bench`
(whose instances serve every size of a function in turn, over one kept-alive
connection, with the floor's instance between them).

Each variant is the function deployed once per mode (process sandbox), with
nexusd's malloc default or an explicit GLIBC_TUNABLES; rounds alternate the
variants (order reversed every other round); every call is a new HTTP
connection. Prints per variant and mode the p50, min and max latency, the node
CPU per call (nexusd + the instance's cgroup) and the instance's PSS.

    /usr/bin/python3 bench/pair.py --func wordcount --size 102400 [--rounds 6] [--calls 40]
        [--tunables NAME=VALUE ...]   (e.g. nommap=glibc.malloc.trim_threshold=8388608)
        [--variant NAME:KEY=VALUE[,KEY=VALUE] ...]   (e.g. nocache:NX_PY_ARENA_CACHE_MB=0)
        [--first-size BYTES]   the instances' first invocation reads an input of this size
                               (what an instance served first can matter: see docs/results.md)
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness"))
import inputs  # noqa: E402
import measure  # noqa: E402
from node import ROOT, Node, zip_dir  # noqa: E402

BUCKET = "pair"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--func", default="wordcount")
    ap.add_argument("--size", type=int, default=100 << 10, help="input bytes (default 100 KiB)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--calls", type=int, default=40, help="calls per variant and mode in each round")
    ap.add_argument("--tunables", nargs="*", default=[], metavar="NAME=GLIBC_TUNABLES")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[,KEY=VALUE]",
                    help="a variant with these environment variables")
    ap.add_argument("--first-size", type=int, help="input bytes of each instance's first invocation")
    args = ap.parse_args()
    variants = {"default": None}
    for t in args.tunables:
        name, _, value = t.partition("=")
        variants[name] = {"GLIBC_TUNABLES": value}
    for v in args.variant:
        name, sep, kvs = v.partition(":")
        pairs = [kv.partition("=") for kv in kvs.split(",")]
        if not sep or not name or any(not k or not eq for k, eq, _ in pairs):
            ap.error(f"--variant {v!r}: expected NAME:KEY=VALUE[,KEY=VALUE]")
        variants[name] = {k: val for k, _, val in pairs}
    node = Node()
    node.up()
    try:
        s3 = node.s3()
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="in", Body=inputs.make(args.func, args.size))
        if args.first_size:
            s3.put_object(Bucket=BUCKET, Key="first", Body=inputs.make(args.func, args.first_size))
        code = zip_dir(os.path.join(ROOT, "functions", args.func))
        names = []
        for v, t in variants.items():
            for mode in ("nexus", "baseline"):
                names.append(f"{v}-{mode}")
                node.deploy(names[-1], code, mode, memory=512, buckets=[BUCKET], max_instances=1,
                            env=t)
        ev = {"bucket": BUCKET, "key": "in", "output_key": "out", "top": 5}
        lat = {n: [] for n in names}
        cpu = {n: 0 for n in names}
        for n in names:   # start and warm every instance
            node.invoke(n, dict(ev, key="first") if args.first_size else ev)
        pids = node.pids()
        for r in range(args.rounds):
            for n in (names if r % 2 == 0 else names[::-1]):
                before = measure.CpuSnapshot(pids)
                for _ in range(args.calls):
                    lat[n].append(node.invoke(n, ev)[0] * 1e3)
                d = measure.CpuSnapshot(pids).delta(before)
                cpu[n] += d["nexusd"] + d["sandboxes"]
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        pss = {i["function"]: measure.instance_memory(i["pid"]) for i in node.nexus_status()["instances"]
               if i.get("pid")}
        print(f"{args.func}, {args.size} bytes, {args.rounds} rounds x {args.calls} calls")
        print("| variant-mode | p50 ms | min | max | node CPU ms/call | PSS MiB |")
        print("|---|---|---|---|---|---|")
        for n in names:
            v = lat[n]
            m = pss.get(n)
            mem = f"{m['pss'] / 2**20:.1f}" if m else "—"
            print(f"| {n} | {statistics.median(v):.2f} | {min(v):.2f} | {max(v):.2f} | "
                  f"{cpu[n] / 1e6 / len(v):.2f} | {mem} |")
    finally:
        node.down()


if __name__ == "__main__":
    main()
