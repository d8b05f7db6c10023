#!/usr/bin/python3
"""Write-back benchmark: put_object latency with nexus:writeback=async against sync (1 MiB by default),
measured inside the function around each call, and the sustained rate at which the journal acknowledges
async puts (several concurrent invocations putting for a while).

Starts its own node (`nexus up` in a private NEXUS_HOME, local S3 server) and stops it at the end.

    /usr/bin/python3 bench/writeback.py [--size BYTES] [--reps N] [--seconds S] [--streams N] [--s3-delay-ms MS]

--s3-delay-ms MS puts a delay line between nexusd and the S3 server (every byte from S3 arrives MS later),
a stand-in for an S3 that is not on the same machine: nexusd then runs outside the CLI, started by this
script with --s3-endpoint pointing at the delay line.
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
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import Node, unique, zip_code  # noqa: E402
from s3_delay import delay_line  # noqa: E402

FN = r"""
import os, time
import boto3

def handler(event, context):
    s3 = boto3.client("s3")
    data = os.urandom(event["size"])
    lat = []
    t_end = time.time() + event.get("seconds", 0)
    i = 0
    while i < event.get("reps", 0) or time.time() < t_end:
        t0 = time.perf_counter()
        s3.put_object(Bucket=event["bucket"], Key="%s/%d" % (event["prefix"], i), Body=data)
        lat.append(time.perf_counter() - t0)
        i += 1
    return {"lat": lat}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stats(xs):
    xs = sorted(xs)
    return {"median_ms": statistics.median(xs) * 1e3, "min_ms": xs[0] * 1e3, "max_ms": xs[-1] * 1e3, "n": len(xs)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1 << 20)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--streams", type=int, default=2)
    ap.add_argument("--s3-delay-ms", type=float, default=0)
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="nexus-bench-wb-")
    n = Node(home)
    extra = None
    try:
        n.up()
        s3 = n.boto("s3")
        if a.s3_delay_ms:
            # a second nexusd, started here, whose S3 is behind the delay line
            st = n.status["s3"]
            s3port = int(st["endpoint"].rsplit(":", 1)[1].strip("/"))
            dport = delay_line(s3port, a.s3_delay_ms / 1e3)
            root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
            build = os.path.join(root, os.environ.get("BUILD", "build"))
            port = free_port()
            env = dict(os.environ, AWS_ACCESS_KEY_ID=st["access_key"], AWS_SECRET_ACCESS_KEY=st["secret_key"])
            extra = subprocess.Popen([os.path.join(build, "bin", "nexusd"), "--listen", f"127.0.0.1:{port}",
                                      "--state-dir", os.path.join(home, "state2"), "--runtime-dir",
                                      os.path.join(build, "runtime"), "--rootfs", os.path.join(build, "rootfs"),
                                      "--s3-endpoint", f"http://127.0.0.1:{dport}", "--s3-region", st["region"]],
                                     env=env, stderr=open(os.path.join(home, "nexusd2.log"), "w"))
            for _ in range(100):
                try:
                    __import__("urllib.request").request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except Exception:
                    time.sleep(0.1)
            n.status = dict(n.status, ingress=f"http://127.0.0.1:{port}")
            print(f"S3 behind a {a.s3_delay_ms:.0f} ms delay line (nexusd on :{port})")
        lam = n.boto("lambda")
        bkt = unique("wbbench")
        s3.create_bucket(Bucket=bkt)
        fns = {}
        for mode in ("sync", "async"):
            fns[mode] = unique(f"wb-{mode}")
            lam.create_function(FunctionName=fns[mode], Runtime="python3.11", Role="arn:aws:iam::0:role/x",
                                Handler="app.handler", Code={"ZipFile": zip_code(FN)}, Timeout=120,
                                MemorySize=512, Tags={"nexus:buckets": bkt, "nexus:writeback": mode})

        def inv(mode, payload):
            r = lam.invoke(FunctionName=fns[mode], Payload=json.dumps(payload).encode())
            out = json.loads(r["Payload"].read())
            assert "FunctionError" not in r, out
            return out

        res = {}
        for mode in ("sync", "async"):
            inv(mode, {"bucket": bkt, "prefix": "warm", "size": a.size, "reps": 3})   # cold start, warm-up
            res[mode] = stats(inv(mode, {"bucket": bkt, "prefix": mode, "size": a.size, "reps": a.reps})["lat"])
        ratio = res["async"]["median_ms"] / res["sync"]["median_ms"]

        # sustained: several invocations putting at once for a while
        counts, lock = [], threading.Lock()

        def stream(i):
            out = inv("async", {"bucket": bkt, "prefix": f"sus{i}", "size": a.size, "seconds": a.seconds})
            with lock:
                counts.append(len(out["lat"]))
        ths = [threading.Thread(target=stream, args=(i,)) for i in range(a.streams)]
        t0 = time.time()
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        wall = time.time() - t0
        puts = sum(counts)
        mb = puts * a.size / 1e6
        print(f"put_object latency, {a.size} bytes, {a.reps} puts each, one warm instance:")
        for mode in ("sync", "async"):
            r = res[mode]
            print(f"  {mode:5s}  median {r['median_ms']:.2f} ms  min {r['min_ms']:.2f} ms  max {r['max_ms']:.2f} ms")
        print(f"  async/sync median ratio {ratio:.2f}")
        print(f"sustained async puts, {a.streams} concurrent invocations for {a.seconds:.0f} s "
              f"(uploads to the local S3 server run at the same time):")
        print(f"  {puts} puts acknowledged, {mb:.0f} MB in {wall:.1f} s wall = {mb / wall:.0f} MB/s, "
              f"{puts / wall:.0f} puts/s")
        m = __import__("urllib.request").request.urlopen(n.ingress + "/metrics").read().decode()
        for line in m.splitlines():
            if line.startswith(("nexus_journal_fsyncs_total", "nexus_journal_appends_total")):
                print("  " + line)
    finally:
        if extra:
            extra.terminate()
            extra.wait(timeout=30)
        n.cli("down", check=False)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
