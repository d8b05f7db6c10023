#!/usr/bin/python3
"""Cold start of the `process` sandbox: fresh (tag nexus:snapshot=none) against
zygote (nexus:snapshot=zygote), per example function.  Results: docs/results-coldstart.md.

    /usr/bin/python3 bench/coldstart.py [--rounds 10] [--funcs hello,image-rotate,wordcount,pyaes] [--json out.json]

One private node (bench/harness/node.py) with a 1 s keep-alive.  Each round
waits until the function has no instance left (scale to zero; its zygote, if
any, stays), then times one invocation client-side (HTTP request to response)
= a cold start, then one more = warm.  Also prints the phases of a fresh cold
start measured apart (--phases): interpreter start, runtime import, handler
import, each timed in the guest root filesystem with the same Python.
"""
import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "harness"))
from node import ROOT, Node, zip_dir  # noqa: E402

FUNCS = ["hello", "image-rotate", "wordcount", "pyaes"]


def deploy(node, name, func, snapshot, bucket):
    tags = {"nexus:mode": "nexus", "nexus:snapshot": snapshot, "nexus:buckets": bucket}
    body = {"FunctionName": name, "Runtime": "python3.11", "Role": "arn:aws:iam::000000000000:role/nexus",
            "Handler": "app.handler", "MemorySize": 256, "Timeout": 60, "Tags": tags,
            "Code": {"ZipFile": base64.b64encode(zip_dir(os.path.join(ROOT, "functions", func))).decode()}}
    st, _, data = node.request("POST", "/2015-03-31/functions", json.dumps(body))
    if st not in (200, 201):
        raise RuntimeError(f"CreateFunction {name}: HTTP {st}: {data[:300]!r}")


def event(func, bucket, s3):
    d = os.path.join(ROOT, "functions", func)
    ev = json.load(open(os.path.join(d, "event.json")))
    if func == "hello":
        return ev
    ev["bucket"] = bucket
    src = os.path.join(d, "input.png" if func == "image-rotate" else "input.txt")
    s3.put_object(Bucket=bucket, Key=ev["key"], Body=open(src, "rb").read())
    return ev


def wait_no_instances(node, name, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        if not [i for i in node.nexus_status()["instances"] if i["function"] == name]:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name}: instances did not scale to zero")


def stats(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def phases(func, reps):
    """Fresh-start phases, timed by running the guest's python3 in the root
    filesystem with the runtime and the function's code where a sandbox has them."""
    rootfs = os.path.join(ROOT, os.environ.get("BUILD", "build"), "rootfs")
    runtime = os.path.join(ROOT, os.environ.get("BUILD", "build"), "runtime")
    code = os.path.join(ROOT, "functions", func)
    steps = {
        "interpreter": "pass",
        "runtime": "import sys; sys.path.insert(0, '/opt/nexus/python'); from nexusrt import runtime, channel",
        "handler": ("import sys; sys.path.insert(0, '/opt/nexus/python'); from nexusrt import runtime, channel; "
                    "sys.path[:0] = ['/opt/nexus/python/shim', '/var/task']; import app"),
    }
    script = "mount --bind {rt} {root}/opt/nexus && mount --bind {code} {root}/var/task && ".format(
        rt=runtime, root=rootfs, code=code)
    script += "for i in $(seq {n}); do for s in {names}; do " \
              "t0=$(date +%s%N); chroot {root} /usr/bin/python3 -c \"$(eval echo \\$S_$s)\" >/dev/null; " \
              "echo $s $(( $(date +%s%N) - t0 )); done; done".format(n=reps, names=" ".join(steps), root=rootfs)
    env = dict(os.environ, **{f"S_{k}": v for k, v in steps.items()})
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], env=env,
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        return {"error": out.stderr.strip()[-300:]}
    t = {k: [] for k in steps}
    for line in out.stdout.splitlines():
        k, ns = line.split()
        t[k].append(int(ns) / 1e6)
    out = {}
    for agg, f in (("min", min), ("median", statistics.median)):   # min: least disturbed by other load
        m = {k: f(v) for k, v in t.items()}
        out[agg] = {"interpreter_ms": round(m["interpreter"], 1),
                    "runtime_import_ms": round(m["runtime"] - m["interpreter"], 1),
                    "handler_import_ms": round(m["handler"] - m["runtime"], 1)}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--funcs", default=",".join(FUNCS))
    ap.add_argument("--json")
    ap.add_argument("--no-phases", action="store_true")
    args = ap.parse_args()
    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}", flush=True)
    funcs = args.funcs.split(",")
    node = Node(keep_alive=1)
    node.up()
    res = {"rounds": args.rounds, "funcs": {}}
    try:
        s3 = node.s3()
        bucket = f"coldstart-{os.getpid()}"
        s3.create_bucket(Bucket=bucket)
        for func in funcs:
            ev = event(func, bucket, s3)
            r = {}
            for snap in ("none", "zygote"):
                name = f"cs-{func}-{snap}".replace("_", "-")
                deploy(node, name, func, snap, bucket)
                first, _ = node.invoke(name, ev)   # the very first start: for zygote, includes starting the zygote
                cold, warm = [], []
                for i in range(args.rounds):
                    wait_no_instances(node, name)
                    dt, _ = node.invoke(name, ev)
                    cold.append(dt * 1000)
                    dt, _ = node.invoke(name, ev)
                    warm.append(dt * 1000)
                r[snap] = {"first_ms": first * 1000, "cold_ms": stats(cold), "warm_ms": stats(warm)}
                node.delete(name)
            r["ratio_zygote_over_fresh"] = r["zygote"]["cold_ms"]["median"] / r["none"]["cold_ms"]["median"]
            if not args.no_phases:
                r["fresh_phases"] = phases(func, args.rounds)
            res["funcs"][func] = r
            z, f = r["zygote"]["cold_ms"], r["none"]["cold_ms"]
            print(f"{func:13s} cold fresh {f['median']:7.1f} ms [{f['min']:.1f}..{f['max']:.1f}]  "
                  f"zygote {z['median']:7.1f} ms [{z['min']:.1f}..{z['max']:.1f}]  "
                  f"ratio {r['ratio_zygote_over_fresh']:.2f}  first {r['none']['first_ms']:.0f}/{r['zygote']['first_ms']:.0f} ms  warm {r['none']['warm_ms']['median']:.1f}/"
                  f"{r['zygote']['warm_ms']['median']:.1f} ms  phases {r.get('fresh_phases')}", flush=True)
    finally:
        node.down()
        shutil.rmtree(node.home, ignore_errors=True)
    res["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    print(f"load average after: {res['loadavg_after']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
