#!/usr/bin/python3
"""Prefetch benchmark: cold-start invocations that read one input object (1 KiB, 1 MiB, 10 MiB), with
and without an X-Nexus-Prefetch hint, alternating.  Every invocation is a cold start (nexusd runs with
--keep-alive 0).  Reported: the client's end-to-end Invoke latency and, inside the handler, the time of
its get_object + read.

Starts its own node (`nexus up -- --keep-alive 0` in a private NEXUS_HOME) and stops it at the end.

    /usr/bin/python3 bench/prefetch.py [--reps N] [--s3-delay-ms MS] [--s3-mbps MB] [--nexusd [LABEL=]PATH ...]

--nexusd (repeatable): A/B of nexusd binaries.  Each runs as its own node (own port and state dir, the same
S3), and the invocations are interleaved (old/new order reversed every other round), so the machine's noise
hits each alike.  Without it, the CLI's node is measured (or, with a delay line, build/bin/nexusd).

--s3-delay-ms / --s3-mbps put a delay line between nexusd and the S3 server (bench/s3_delay.py): every
byte from S3 arrives MS later, paced to MB megabytes/s per connection.  nexusd then runs outside the
CLI, started by this script with --s3-endpoint pointing at the delay line.
"""
import argparse
import copy
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


def start_nexusd(binary, home, tag, s3st, endpoint, build):
    """One extra nexusd (binary) on its own port and state dir, against endpoint."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, AWS_ACCESS_KEY_ID=s3st["access_key"], AWS_SECRET_ACCESS_KEY=s3st["secret_key"])
    log = os.path.join(home, f"nexusd-{tag}.log")
    p = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}",
                          "--state-dir", os.path.join(home, f"state-{tag}"), "--keep-alive", "0",
                          "--runtime-dir", os.path.join(build, "runtime"),
                          "--rootfs", os.path.join(build, "rootfs"),
                          "--s3-endpoint", endpoint, "--s3-region", s3st["region"]]
                         + (["--log-level", "debug"] if os.environ.get("BENCH_DEBUG") else []),
                         env=env, stderr=open(log, "w"))
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    return p, f"http://127.0.0.1:{port}", log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--s3-delay-ms", type=float, default=0)
    ap.add_argument("--s3-mbps", type=float, default=0)
    ap.add_argument("--nexusd", action="append", default=[], metavar="[LABEL=]PATH",
                    help="A/B: run these nexusd binaries side by side (each its own node, same S3), "
                         "interleaved invocation by invocation; e.g. --nexusd old=/tmp/nexusd-old "
                         "--nexusd new=build/bin/nexusd")
    ap.add_argument("--sizes", default="1K,1M,10M", help="input sizes, e.g. 10M or 1K,1M,10M")
    a = ap.parse_args()
    sizes = [(x.replace("K", " KiB").replace("M", " MiB"), int(x[:-1]) << (10 if x[-1] == "K" else 20))
             for x in a.sizes.split(",")]
    home = tempfile.mkdtemp(prefix="nexus-bench-pf-")
    n = Node(home)
    extras = []   # (label, process, ingress, log)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    build = os.path.join(root, os.environ.get("BUILD", "build"))
    try:
        n.cli("up", "--", "--keep-alive", "0", timeout=180)
        n.status = json.loads(n.cli("status", "--json").stdout)
        s3st = n.status["s3"]
        endpoint = s3st["endpoint"].rstrip("/")
        if a.s3_delay_ms or a.s3_mbps:
            dport = delay_line(int(endpoint.rsplit(":", 1)[1]), a.s3_delay_ms / 1e3, a.s3_mbps)
            endpoint = f"http://127.0.0.1:{dport}"
            print(f"S3 behind a delay line: +{a.s3_delay_ms:.0f} ms, {a.s3_mbps or 'unlimited'} MB/s per connection")
            if not a.nexusd:
                a.nexusd = [os.path.join(build, "bin", "nexusd")]
        for i, spec in enumerate(a.nexusd):
            label, _, path = spec.rpartition("=")
            label = label or (os.path.basename(path) if len(a.nexusd) > 1 else "nexusd")
            p, ingress, log = start_nexusd(os.path.abspath(path), home, f"{i}", s3st, endpoint, build)
            extras.append((label, p, ingress, log))
        nodes = [(lab, ing) for lab, _, ing, _ in extras] or [("nexusd", n.ingress)]
        lam0, s3 = n.boto("lambda"), n.boto("s3")
        bkt = unique("pfbench")
        s3.create_bucket(Bucket=bkt)
        urls = {}
        for lab, ing in nodes:
            lam = lam0 if ing == n.ingress else dict_node(n, ing).boto("lambda")
            name = unique("pf")
            lam.create_function(FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::0:role/x",
                                Handler="app.handler", Code={"ZipFile": zip_code(FN)}, Timeout=60, MemorySize=512,
                                Tags={"nexus:buckets": bkt})
            urls[lab] = f"{ing}/2015-03-31/functions/{name}/invocations"

        def invoke(lab, key, hint):
            req = urllib.request.Request(urls[lab], data=json.dumps({"bucket": bkt, "key": key}).encode(),
                                         method="POST")
            if hint:
                req.add_header("X-Nexus-Prefetch", f"s3://{bkt}/{key}")
            t0 = time.perf_counter()
            out = json.loads(urllib.request.urlopen(req, timeout=60).read())
            if os.environ.get("BENCH_DEBUG"):
                print(lab, "hint" if hint else "none", {k: round(v, 1) for k, v in out.items()})
            return (time.perf_counter() - t0) * 1e3, out["get_ms"], out["call_ms"], out["read_ms"]

        rows = []
        load = []
        for label, size in sizes:
            key = f"in-{size}"
            s3.put_object(Bucket=bkt, Key=key, Body=os.urandom(size))
            for lab, _ in nodes:
                invoke(lab, key, False)   # warm the page cache of the S3 server
            res = {(lab, h): [] for lab, _ in nodes for h in (False, True)}
            for r in range(a.reps):
                order = nodes if r % 2 == 0 else nodes[::-1]
                for lab, _ in order:
                    for hint in (False, True):
                        res[(lab, hint)].append(invoke(lab, key, hint))
                        time.sleep(0.2)   # let the previous instance go (keep-alive 0)
                load.append(os.getloadavg()[0])
            rows.append((label, res))
        print(f"cold-start invocations, {a.reps} each, alternating; milliseconds median (min..max); "
              f"load average {min(load):.1f}..{max(load):.1f} (1 min) during the run")
        multi = len(nodes) > 1
        print(("| nexusd " if multi else "") + "| input | no hint: invoke | hint: invoke | ratio | "
              "no hint: get_object+read | hint: get_object+read | hint: get_object() | hint: read() |")
        print(("|---" if multi else "") + "|---|---|---|---|---|---|---|---|")
        for label, res in rows:
            for lab, _ in nodes:
                def col(hint, i):
                    return st([x[i] for x in res[(lab, hint)]])
                e0, e1, g0, g1, c1, r1 = col(False, 0), col(True, 0), col(False, 1), col(True, 1), col(True, 2), col(True, 3)
                print((f"| {lab} " if multi else "") +
                      f"| {label} | {e0[0]:.1f} ({e0[1]:.1f}..{e0[2]:.1f}) | {e1[0]:.1f} ({e1[1]:.1f}..{e1[2]:.1f}) | "
                      f"{e1[0] / e0[0]:.2f} | {g0[0]:.2f} ({g0[1]:.2f}..{g0[2]:.2f}) | "
                      f"{g1[0]:.2f} ({g1[1]:.2f}..{g1[2]:.2f}) | {c1[0]:.2f} | {r1[0]:.2f} |")
        for lab, ing in nodes:
            m = urllib.request.urlopen(ing + "/metrics").read().decode()
            for line in m.splitlines():
                if line.startswith(("nexus_prefetch_total", "nexus_prefetch_region_total", "nexus_cold_starts_total")):
                    print(f"  {lab}: {line}")
    finally:
        for lab, p, _, log in extras:
            if os.environ.get("BENCH_DEBUG"):
                for line in open(log):
                    if "prefetch hit" in line or " ready in " in line:
                        print(lab, line.rstrip())
            p.terminate()
            p.wait(timeout=30)
        n.cli("down", check=False)
        shutil.rmtree(home, ignore_errors=True)


def dict_node(n, ingress):
    """A copy of node n whose boto clients talk to another nexusd (same S3, same credentials)."""
    v = copy.copy(n)
    v.status = dict(n.status, ingress=ingress)
    return v


if __name__ == "__main__":
    main()
