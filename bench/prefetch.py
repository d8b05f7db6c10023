#!/usr/bin/python3
"""Prefetch benchmark: cold-start invocations that read one input object (1 KiB, 1 MiB, 10 MiB), with
and without an X-Nexus-Prefetch hint, alternating.  Every invocation is a cold start (nexusd runs with
--keep-alive 0).  Reported: the client's end-to-end Invoke latency and, inside the handler, the time of
its get_object + read.

Starts its own node (`nexus up -- --keep-alive 0` in a private NEXUS_HOME) and stops it at the end.

    /usr/bin/python3 bench/prefetch.py [--reps N] [--s3-delay-ms MS] [--s3-mbps MB]

--s3-delay-ms / --s3-mbps put a delay line between nexusd and the S3 server (bench/s3_delay.py): every
byte from S3 arrives MS later, paced to MB megabytes/s per connection.  nexusd then runs outside the
CLI, started by this script with --s3-endpoint pointing at the delay line.
"""
import argparse
import json
import socket
import subprocess
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import Node, unique, zip_code  # noqa: E402
from s3_delay import delay_line  # noqa: E402

FN = r"""
import time
import boto3
s3 = boto3.client("s3")

def handler(event, context):
    t0 = time.perf_counter()
    c0 = time.process_time()
    body = s3.get_object(Bucket=event["bucket"], Key=event["key"])["Body"]
    t1 = time.perf_counter()
    c1 = time.process_time()
    n = len(body.read())
    t2 = time.perf_counter()
    c2 = time.process_time()
    return {"get_ms": (t2 - t0) * 1e3, "call_ms": (t1 - t0) * 1e3, "read_ms": (t2 - t1) * 1e3,
            "call_cpu_ms": (c1 - c0) * 1e3, "read_cpu_ms": (c2 - c1) * 1e3, "len": n}
"""


def st(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[0], xs[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--s3-delay-ms", type=float, default=0)
    ap.add_argument("--s3-mbps", type=float, default=0)
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="nexus-bench-pf-")
    n = Node(home)
    extra = None
    try:
        n.cli("up", "--", "--keep-alive", "0", timeout=180)
        n.status = json.loads(n.cli("status", "--json").stdout)
        if a.s3_delay_ms or a.s3_mbps:
            s3st = n.status["s3"]
            dport = delay_line(int(s3st["endpoint"].rstrip("/").rsplit(":", 1)[1]), a.s3_delay_ms / 1e3, a.s3_mbps)
            root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
            build = os.path.join(root, os.environ.get("BUILD", "build"))
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            env = dict(os.environ, AWS_ACCESS_KEY_ID=s3st["access_key"], AWS_SECRET_ACCESS_KEY=s3st["secret_key"])
            extra = subprocess.Popen([os.path.join(build, "bin", "nexusd"), "--listen", f"127.0.0.1:{port}",
                                      "--state-dir", os.path.join(home, "state2"), "--keep-alive", "0",
                                      "--runtime-dir", os.path.join(build, "runtime"),
                                      "--rootfs", os.path.join(build, "rootfs"),
                                      "--s3-endpoint", f"http://127.0.0.1:{dport}", "--s3-region", s3st["region"]]
                                     + (["--log-level", "debug"] if os.environ.get("BENCH_DEBUG") else []),
                                     env=env, stderr=open(os.path.join(home, "nexusd2.log"), "w"))
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except Exception:
                    time.sleep(0.1)
            n.status = dict(n.status, ingress=f"http://127.0.0.1:{port}")
            print(f"S3 behind a delay line: +{a.s3_delay_ms:.0f} ms, {a.s3_mbps or 'unlimited'} MB/s per connection")
        lam, s3 = n.boto("lambda"), n.boto("s3")
        bkt = unique("pfbench")
        s3.create_bucket(Bucket=bkt)
        name = unique("pf")
        lam.create_function(FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::0:role/x",
                            Handler="app.handler", Code={"ZipFile": zip_code(FN)}, Timeout=60, MemorySize=512,
                            Tags={"nexus:buckets": bkt})
        url = f"{n.ingress}/2015-03-31/functions/{name}/invocations"

        def invoke(key, hint):
            req = urllib.request.Request(url, data=json.dumps({"bucket": bkt, "key": key}).encode(), method="POST")
            if hint:
                req.add_header("X-Nexus-Prefetch", f"s3://{bkt}/{key}")
            t0 = time.perf_counter()
            out = json.loads(urllib.request.urlopen(req, timeout=60).read())
            if os.environ.get("BENCH_DEBUG"):
                print("hint" if hint else "none", {k: round(v, 1) for k, v in out.items()})
            return (time.perf_counter() - t0) * 1e3, out["get_ms"]

        rows = []
        for label, size in (("1 KiB", 1 << 10), ("1 MiB", 1 << 20), ("10 MiB", 10 << 20)):
            key = f"in-{size}"
            s3.put_object(Bucket=bkt, Key=key, Body=os.urandom(size))
            invoke(key, False)   # warm the page cache of the S3 server
            res = {False: ([], []), True: ([], [])}
            for _ in range(a.reps):
                for hint in (False, True):
                    e2e, get = invoke(key, hint)
                    res[hint][0].append(e2e)
                    res[hint][1].append(get)
                    time.sleep(0.2)   # let the previous instance go (keep-alive 0)
            rows.append((label, res))
        m = urllib.request.urlopen(n.ingress + "/metrics").read().decode()
        print(f"cold-start invocations, {a.reps} each, alternating; milliseconds median (min..max)")
        print("| input | no hint: invoke | hint: invoke | ratio | no hint: get_object | hint: get_object |")
        print("|---|---|---|---|---|---|")
        for label, res in rows:
            e0, e1 = st(res[False][0]), st(res[True][0])
            g0, g1 = st(res[False][1]), st(res[True][1])
            print(f"| {label} | {e0[0]:.1f} ({e0[1]:.1f}..{e0[2]:.1f}) | {e1[0]:.1f} ({e1[1]:.1f}..{e1[2]:.1f}) | "
                  f"{e1[0] / e0[0]:.2f} | {g0[0]:.2f} ({g0[1]:.2f}..{g0[2]:.2f}) | {g1[0]:.2f} ({g1[1]:.2f}..{g1[2]:.2f}) |")
        for line in m.splitlines():
            if line.startswith(("nexus_prefetch_total", "nexus_cold_starts_total")):
                print("  " + line)
    finally:
        if extra and os.environ.get("BENCH_DEBUG"):
            for line in open(os.path.join(home, "nexusd2.log")):
                if "prefetch hit" in line or " ready in " in line:
                    print(line.rstrip())
        if extra:
            extra.terminate()
            extra.wait(timeout=30)
        n.cli("down", check=False)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
