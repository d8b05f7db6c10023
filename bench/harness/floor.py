"""The floor: the same handler run as a plain host process (no sandbox, no HTTP
ingress) against nexusd's real channel server, with guest-realhost
(guest/libnexus/tests/realhost.c: nexusd/chan.c + loop.c and an in-memory S3).

The handler is the function's unchanged app.py; a wrapper module
(bench_floor.py) stores the input object into realhost's in-memory S3 through
the shim when it is imported (after READY, so the channel is up) and then
re-exports app.handler.  The floor therefore has neither the sandbox, nor the
HTTP hop, nor the S3 server's time: it is the physical limit of the design."""
import json
import os
import re
import shutil
import subprocess
import tempfile

from node import BIN, BUILD, ROOT

WRAPPER = '''import os
import boto3
if os.environ.get("BENCH_INPUT"):
    with open(os.environ["BENCH_INPUT"], "rb") as f:
        boto3.client("s3").put_object(Bucket=os.environ["BENCH_BUCKET"], Key=os.environ["BENCH_KEY"], Body=f.read())
from app import handler  # noqa: E402,F401
'''
LINE = re.compile(r"median ([\d.]+) us, p99 ([\d.]+), min ([\d.]+), max ([\d.]+) \((\d+) invocations\)")


def run(func, ev, input_path, n, log):
    task = tempfile.mkdtemp(prefix="nexus-floor-")
    try:
        shutil.copy(os.path.join(ROOT, "functions", func, "app.py"), task)
        with open(os.path.join(task, "bench_floor.py"), "w") as f:
            f.write(WRAPPER)
        env = dict(os.environ, NEXUS_TASK_ROOT=task)
        if input_path:
            env.update(BENCH_INPUT=input_path, BENCH_BUCKET=ev["bucket"], BENCH_KEY=ev["key"])
        cmd = [os.path.join(BIN, "guest-realhost"), "--invoke", str(n), "--event", json.dumps(ev),
               "--handler", "bench_floor.handler", "--label", func]
        if input_path:
            cmd += ["--buckets", ev["bucket"]]
        cmd += ["--", "/usr/bin/python3", "-u", os.path.join(ROOT, BUILD, "runtime", "python", "bootstrap.py")]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, cwd=task)
        m = LINE.search(p.stdout)
        if p.returncode != 0 or not m:
            log(f"floor {func}: guest-realhost failed ({p.returncode}): {(p.stderr + p.stdout)[-600:]}")
            return None
        r = {"p50": float(m.group(1)) / 1e3, "p99": float(m.group(2)) / 1e3, "min": float(m.group(3)) / 1e3,
             "max": float(m.group(4)) / 1e3, "n": int(m.group(5))}
        log(f"floor {func} {os.path.basename(input_path or 'none')}: p50 {r['p50']:.3f} ms, p99 {r['p99']:.3f} ms")
        return r
    finally:
        shutil.rmtree(task, ignore_errors=True)
