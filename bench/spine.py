#!/usr/bin/python3
"""The issue-2 spine benchmarks, side by side, as medians with min and max over
repetitions (each repetition itself a median over many round trips):

1. warm no-op invocation through nexusd (HTTP, one kept-alive connection:
   build/bin/nexus-bench-invoke) into a warm instance, nexus and baseline mode;
2. the channel's own null round trip against nexusd's chan.c, from C
   (guest-realhost -- guest-nopbench) and from Python (ctypes -> libnexus);
3. get_object of 1 MiB (+ read()) inside a function: the shim over the channel
   (nexus mode) vs the real boto3 over TCP (baseline mode) against the same local S3.

    /usr/bin/python3 bench/spine.py [--reps N] [--quick]"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness"))
from node import BIN, BUILD, ROOT, Node, zip_dir  # noqa: E402

NOOP = "def handler(event, context):\n    return None\n"


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "reps": len(values)}


def run(reps, log=print, quick=False):
    res = {}
    n_inv = 500 if quick else 3000
    node = Node()
    node.up()
    try:
        import io
        import zipfile
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("app.py", NOOP)
        for mode in ("nexus", "baseline"):
            node.deploy(f"noop-{mode}", buf.getvalue(), mode, memory=128, max_instances=1)
            node.invoke(f"noop-{mode}", {})
        s3 = node.s3()
        s3.create_bucket(Bucket="spine")
        s3.put_object(Bucket="spine", Key="1MiB", Body=os.urandom(1 << 20))
        code = zip_dir(os.path.join(ROOT, "bench", "spine_fn"))
        for mode in ("nexus", "baseline"):
            node.deploy(f"get-{mode}", code, mode, memory=256, buckets=["spine"], max_instances=1)
        inv = {"nexus": [], "baseline": []}
        get = {"nexus": [], "baseline": []}
        for r in range(reps):
            for mode in (("nexus", "baseline") if r % 2 == 0 else ("baseline", "nexus")):
                p = subprocess.run([os.path.join(BIN, "nexus-bench-invoke"), node.ingress, f"noop-{mode}",
                                    "-n", str(n_inv), "-w", "100"], capture_output=True, text=True, check=True)
                inv[mode].append(json.loads(p.stdout)["median_us"])
                _, body = node.invoke(f"get-{mode}", {"bucket": "spine", "key": "1MiB", "n": 20 if quick else 50})
                out = json.loads(body)
                assert out["bytes"] == 1 << 20, out
                get[mode].append(statistics.median(out["us"][2:]))
        res["invoke_noop_us"] = {m: summary(v) for m, v in inv.items()}
        res["get_1mib_us"] = {m: summary(v) for m, v in get.items()}
        log(f"spine: warm no-op invocation p50 nexus {res['invoke_noop_us']['nexus']['median']:.0f} us, "
            f"baseline {res['invoke_noop_us']['baseline']['median']:.0f} us")
        log(f"spine: get_object 1 MiB shim {res['get_1mib_us']['nexus']['median']:.0f} us, "
            f"real boto3 {res['get_1mib_us']['baseline']['median']:.0f} us")
    finally:
        node.down()
    line = re.compile(r"median ([\d.]+) us")
    for lang, cmd in (("c", [os.path.join(BIN, "guest-nopbench"), "5000" if quick else "20000"]),
                      ("python", ["/usr/bin/python3", os.path.join(ROOT, "guest/python/tests/nopbench.py"),
                                  os.path.join(ROOT, BUILD, "runtime"), "2000" if quick else "10000"])):
        vals = []
        for _ in range(reps):
            p = subprocess.run([os.path.join(BIN, "guest-realhost"), "--", *cmd], capture_output=True, text=True)
            m = line.search(p.stdout + p.stderr)
            if m:
                vals.append(float(m.group(1)))
        res[f"channel_null_{lang}_us"] = summary(vals) if vals else None
        if vals:
            log(f"spine: channel null round trip ({lang}) median {statistics.median(vals):.1f} us")
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    print(json.dumps(run(a.reps, lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", flush=True), a.quick),
                     indent=2))
