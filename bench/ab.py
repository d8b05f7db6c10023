#!/usr/bin/python3
"""Before/after of one code change, measured side by side: warm latency and
node CPU per invocation of nexus-mode functions on several nodes at once, one
per variant, in interleaved rounds (round-robin over the nodes, the order
reversed every other round), so machine noise hits each variant alike.

A variant is one of
  base                 this build as it is
  spin=US:Y            libnexus.so built with -DNX_SPIN_US_DEFAULT=US
                       -DNX_SPIN_YIELD_DEFAULT=Y (the guest's wait policy,
                       guest/libnexus/transport_common.c), in its own copy of the
                       runtime directory.  (NEXUS_* variables are reserved in a
                       function's environment, hence a build per policy.)
  nexusd=PATH          another nexusd binary (e.g. built from the previous
                       commit's sources) with this build's runtime
Each node has its own nexusd and nexus-s3peer.

    /usr/bin/python3 bench/ab.py [--rounds 6] [--n 300] [--variants spin=50:1,spin=0:0]
                                 [--funcs hello,wordcount] [--json out.json]

Prints a Markdown table: per variant, the median over rounds of each round's
p50 (and min/max), and node CPU per invocation (nexusd + the instance's cgroup)."""
import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "harness"))
import inputs  # noqa: E402
import measure  # noqa: E402
from node import BIN, BUILD, ROOT, Node, zip_dir  # noqa: E402


def build_runtime(variant, work):
    us, y = variant.split("=", 1)[1].split(":")
    rt = os.path.join(work, f"runtime-{us}-{y}")
    shutil.copytree(os.path.join(ROOT, BUILD, "runtime"), rt)
    srcs = sorted(glob.glob(os.path.join(ROOT, "guest/libnexus/*.c"))) + \
        [os.path.join(ROOT, "common", f) for f in ("ring.c", "arena.c", "tlv.c")]
    subprocess.run(["cc", "-O2", "-g", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
                    "-I" + os.path.join(ROOT, "include"), "-fPIC", "-fvisibility=hidden", "-pthread",
                    f"-DNX_SPIN_US_DEFAULT={int(us)}", f"-DNX_SPIN_YIELD_DEFAULT={int(y)}",
                    "-shared", "-Wl,-soname,libnexus.so", "-Wl,-z,defs", "-o", os.path.join(rt, "lib", "libnexus.so"),
                    *srcs, "-pthread"], check=True)
    return rt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--n", type=int, default=300, help="invocations per variant, function and round")
    ap.add_argument("--variants", default="spin=50:1,spin=0:0", help="base | spin=US:YIELD | nexusd=PATH, ...")
    ap.add_argument("--funcs", default="hello,wordcount",
                    help="functions/<name>, or get1m / get10m (bench/spine_fn: one get_object of 1 / 10 MiB + read())")
    ap.add_argument("--json")
    args = ap.parse_args()
    variants = args.variants.split(",")
    funcs = args.funcs.split(",")
    work = tempfile.mkdtemp(prefix="spin-")
    nodes, res = {}, {}
    try:
        for v in variants:
            node = Node(s3="s3peer")
            if v.startswith("spin="):
                node.env["NEXUS_RUNTIME_DIR"] = build_runtime(v, work)
            elif v.startswith("nexusd="):
                node.env["NEXUS_NEXUSD"] = v.split("=", 1)[1]
            elif v != "base":
                raise SystemExit(f"unknown variant {v!r}")
            node.up()
            nodes[v] = node
            s3 = node.s3()
            s3.create_bucket(Bucket="spin")
            s3.put_object(Bucket="spin", Key="in", Body=inputs.make("wordcount", 1024))
            s3.put_object(Bucket="spin", Key="1m", Body=os.urandom(1 << 20))
            if "get10m" in funcs:
                s3.put_object(Bucket="spin", Key="10m", Body=os.urandom(10 << 20))
            for f in funcs:
                src = os.path.join(HERE, "spine_fn") if f in ("get1m", "get10m") else os.path.join(ROOT, "functions", f)
                code = zip_dir(src)
                node.deploy(f, code, "nexus", memory=512, buckets=["spin"], max_instances=1)
                res[(f, v)] = {"p50": [], "p99": [], "cpu": []}
        for f in funcs:
            ev = {"name": "x"} if f == "hello" else {"bucket": "spin", "key": f[3:], "n": 1} if f in ("get1m", "get10m") else \
                {"bucket": "spin", "key": "in", "output_key": "out/" + f, "top": 5}
            with open(os.path.join(work, f + ".json"), "w") as fh:
                json.dump(ev, fh)
            for v in variants:
                nodes[v].invoke(f, ev)
        for r in range(args.rounds):
            for f in funcs:
                for v in (variants if r % 2 == 0 else variants[::-1]):
                    node = nodes[v]
                    pids = node.pids()
                    out = os.path.join(work, "lat.txt")
                    s0 = measure.CpuSnapshot(pids)
                    p = subprocess.run([os.path.join(BIN, "nexus-bench-load"), "closed", node.ingress, f,
                                        os.path.join(work, f + ".json"), str(args.n), "5", out],
                                       capture_output=True, text=True)
                    s1 = measure.CpuSnapshot(pids)
                    if p.returncode:
                        raise RuntimeError(p.stderr)
                    lat = sorted(int(x) / 1e6 for x in open(out).read().split())
                    d = s1.delta(s0)
                    res[(f, v)]["p50"].append(lat[len(lat) // 2])
                    res[(f, v)]["p99"].append(lat[int(len(lat) * 0.99)])
                    res[(f, v)]["cpu"].append((d["nexusd"] + d["sandboxes"]) / 1e6 / (args.n + 5))
            print(f"round {r + 1}/{args.rounds} done (load {open('/proc/loadavg').read().split()[0]})", flush=True)
    finally:
        for node in nodes.values():
            node.down()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n| function | variant | warm p50 ms (median of {args.rounds} rounds) | min | max | p99 ms (median) "
          "| node CPU ms/inv (median) | min | max |")
    print("|---|---|---|---|---|---|---|---|---|")
    out = []
    for (f, v), d in res.items():
        p, c = d["p50"], d["cpu"]
        print(f"| {f} | {v} | {statistics.median(p):.3f} | {min(p):.3f} | {max(p):.3f} | "
              f"{statistics.median(d['p99']):.3f} | {statistics.median(c):.3f} | {min(c):.3f} | {max(c):.3f} |")
        out.append({"function": f, "variant": v, **d})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
