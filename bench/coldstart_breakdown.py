#!/usr/bin/python3
"""Cold-start breakdown, nexus against baseline, both restoring the same kind of snapshot (issue 6).

On the `process` driver the snapshot is the function's zygote (tag nexus:snapshot=zygote): the
runtime, boto3 (the shim in nexus mode, the real one in baseline mode) and the handler module with its
module-level boto3.client('s3') imported once; every cold start forks from it.  Per round, with each
function scaled to zero (its zygote alive), one cold invocation per mode and input size, the modes
interleaved (order reversed every other round).  The function GETs the object named in its event and
does little work (len + crc32 of 4 KiB).  Nexus mode gets the prefetch hint (X-Nexus-Prefetch), so
nexusd fetches the input while the instance is forked; the baseline GETs it inside the guest, over TCP
through the relay, with the real boto3 (docs/baseline.md).

Phases of one cold start (milliseconds from the moment the client sends the request):
  restore      nexusd: instance created .. READY ("ready in" in nexusd's log); for baseline it
               includes the instance's own network namespace + veth ("network" of the zygote line)
  fork         nexusd: fork request .. the child reported (zygote line)
  handler      the handler is entered (time.time() in the guest; the process sandbox shares the clock)
  get          get_object() + read() inside the handler
  prefetch     nexus: invocation arrival .. hinted GET done (nexusd's "prefetch hit" line), and how much
               of it overlapped the restore (min(prefetch, restore)); "waited" = how long the guest's
               get_object waited for it
  first byte   the client has the response's status line and headers
  total        the client has the whole response

Starts a private node (bench/harness/node.py: `nexus up` in its own NEXUS_HOME, nexus-s3peer as the
S3 server by default, nexusd at --log-level debug for the phase lines, 1 s keep-alive) and stops it.
Run as root after `make`:

    /usr/bin/python3 bench/coldstart_breakdown.py [--reps 10] [--sizes 1K,1M,10M] [--s3 s3peer|s3rver]
                                                 [--json out.json] [--smoke]

Progress goes to stderr, the table to stdout.  --smoke: 1 round of 1 KiB (the test-bench check).
"""
import argparse
import base64
import http.client
import json
import os
import re
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "harness"))
from node import PEER_KEY, Node, start_s3peer, zip_dir  # noqa: E402,F401

FN = r'''
import os, time, zlib
import boto3
s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))

def handler(event, context):
    t0 = time.time()
    body = s3.get_object(Bucket=event["bucket"], Key=event["key"])["Body"]
    t1 = time.time()
    data = body.read()
    t2 = time.time()
    return {"t_handler": t0, "t_call": t1, "t_read": t2, "len": len(data), "crc": zlib.crc32(data[:4096])}
'''

MODES = ("nexus", "baseline")
RE_READY = re.compile(r"instance (\d+) \((\S+), pid (\d+), runtime \S+\) ready in ([\d.]+) ms")
RE_CHILD = re.compile(r"zygote child for (\S+): pid (\d+) in ([\d.]+) ms \(network ([\d.]+), "
                      r"fork request\.\.child report ([\d.]+), own cgroup ([\d.]+)\)")
RE_PF = re.compile(r"prefetch hit s3://([^/\s]+)/(\S+) \((\d+) bytes(?:, in the region)?\): fetched ([\d.]+) ms "
                   r"after the invocation arrived, claimed at ([\d.]+) ms, served at ([\d.]+) ms "
                   r"\(the guest waited ([\d.]+) ms\)")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_size(x):
    return x.replace("K", " KiB").replace("M", " MiB"), int(x[:-1]) << (10 if x[-1] == "K" else 20)


def zip_source(src):
    import io
    import zipfile
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("app.py", src)
    return b.getvalue()


def node_up(node):
    """Node.up() with nexusd at debug level (the phase lines are debug)."""
    if node.s3kind == "s3peer":
        node.peer, endpoint = start_s3peer(os.path.join(node.home, "s3peer.log"))
        node.env.update(AWS_ENDPOINT_URL_S3=endpoint, AWS_ACCESS_KEY_ID=PEER_KEY,
                        AWS_SECRET_ACCESS_KEY=PEER_KEY, AWS_REGION="us-east-1")
    node.cli("up", "--", "--log-level", "debug")
    node.status = json.loads(node.cli("status", "--json"))
    import urllib.parse
    u = urllib.parse.urlparse(node.ingress)
    node.host, node.port = u.hostname, u.port


def deploy(node, name, mode, bucket):
    tags = {"nexus:mode": mode, "nexus:sandbox": "process", "nexus:snapshot": "zygote", "nexus:buckets": bucket}
    body = {"FunctionName": name, "Runtime": "python3.11", "Role": "arn:aws:iam::000000000000:role/nexus",
            "Handler": "app.handler", "MemorySize": 256, "Timeout": 20, "Tags": tags,
            "Code": {"ZipFile": base64.b64encode(zip_source(FN)).decode()}}
    st, _, data = node.request("POST", "/2015-03-31/functions", json.dumps(body))
    if st not in (200, 201):
        raise RuntimeError(f"CreateFunction {name}: HTTP {st}: {data[:300]!r}")


def wait_no_instances(node, name, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        if not [i for i in node.nexus_status()["instances"] if i["function"] == name]:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name}: instances did not scale to zero")


def invoke(node, name, event, hint=None):
    """One invocation on a new connection; client-side timestamps (time.time()) and the result."""
    conn = http.client.HTTPConnection(node.host, node.port, timeout=120)
    hdr = {"Content-Type": "application/json"}
    if hint:
        hdr["X-Nexus-Prefetch"] = hint
    body = json.dumps(event)
    try:
        conn.connect()
        t_send = time.time()
        conn.request("POST", f"/2015-03-31/functions/{name}/invocations", body=body, headers=hdr)
        r = conn.getresponse()
        t_hdr = time.time()
        data = r.read()
        t_done = time.time()
        if r.status != 200 or r.getheader("X-Amz-Function-Error"):
            raise RuntimeError(f"invoke {name}: HTTP {r.status}: {data[:500]!r}")
        return t_send, t_hdr, t_done, json.loads(data)
    finally:
        conn.close()


class LogTail:
    """New lines of nexusd's log since the last call."""

    def __init__(self, path):
        self.path = path
        self.off = os.path.getsize(path) if os.path.exists(path) else 0

    def new(self):
        with open(self.path, "rb") as f:   # bytes: offsets stay exact whatever the log holds
            f.seek(self.off)
            data = f.read()
        cut = data.rfind(b"\n") + 1
        self.off += cut
        return data[:cut].decode(errors="replace").splitlines()


def phases_of(lines, name, bucket, key):
    """nexusd's view of one cold start of function name (restore, fork, network, prefetch)."""
    out = {}
    for line in lines:
        m = RE_READY.search(line)
        if m and m.group(2) == name:
            out["restore"] = float(m.group(4))
        m = RE_CHILD.search(line)
        if m and m.group(1) == name:
            out["zy_start"], out["network"], out["fork"], out["cgroup"] = (float(m.group(i)) for i in (3, 4, 5, 6))
        m = RE_PF.search(line)
        if m and m.group(1) == bucket and m.group(2) == key:
            out["prefetch"], out["pf_claimed"], out["pf_waited"] = float(m.group(4)), float(m.group(5)), \
                float(m.group(7))
    return out


def one(node, tail, name, mode, bucket, key, size):
    hint = f"s3://{bucket}/{key}" if mode == "nexus" else None
    tail.new()
    t_send, t_hdr, t_done, res = invoke(node, name, {"bucket": bucket, "key": key}, hint)
    if res.get("len") != size:
        raise RuntimeError(f"{name}: read {res.get('len')} bytes, expected {size}")
    ms = lambda t: (t - t_send) * 1e3   # noqa: E731
    p = {"handler": ms(res["t_handler"]), "get": (res["t_read"] - res["t_handler"]) * 1e3,
         "get_call": (res["t_call"] - res["t_handler"]) * 1e3, "get_read": (res["t_read"] - res["t_call"]) * 1e3,
         "return": (t_hdr - res["t_read"]) * 1e3, "first_byte": ms(t_hdr), "total": ms(t_done)}
    lines = []
    for _ in range(20):   # the debug lines are written before the response; allow the file a moment
        lines += tail.new()
        ph = phases_of(lines, name, bucket, key)
        if "restore" in ph and (mode != "nexus" or "prefetch" in ph):
            break
        time.sleep(0.05)
    p.update(ph)
    if "prefetch" in p and "restore" in p:
        p["pf_overlap"] = min(p["prefetch"], p["restore"])
    return p


def summary(xs):
    xs = sorted(xs)
    return {"median": statistics.median(xs), "min": xs[0], "max": xs[-1], "n": len(xs)} if xs else None


COLS = [("restore", "restore (created..READY)"), ("network", "of which network"), ("fork", "fork..child"),
        ("prefetch", "prefetch GET (arrival..done)"), ("pf_overlap", "prefetch overlap with restore"),
        ("pf_waited", "guest waited for prefetch"), ("handler", "handler entered"),
        ("get", "get_object+read in handler"), ("return", "handler end..first byte"),
        ("first_byte", "**first byte**"), ("total", "total")]


def fmt(s):
    return f"{s['median']:.1f} ({s['min']:.1f}..{s['max']:.1f})" if s else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--sizes", default="1K,1M,10M")
    ap.add_argument("--s3", default="s3peer", choices=("s3peer", "s3rver"))
    ap.add_argument("--json")
    ap.add_argument("--smoke", action="store_true", help="1 round, 1 KiB: that the pipeline works")
    a = ap.parse_args()
    if a.smoke:
        a.reps, a.sizes = 1, "1K"
    sizes = [parse_size(x) for x in a.sizes.split(",")]
    if os.geteuid() != 0:
        sys.exit("coldstart_breakdown: must run as root (nexusd's process sandbox)")
    load = [os.getloadavg()[0]]
    log(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
    node = Node(keep_alive=1, s3=a.s3)
    res = {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "reps": a.reps, "s3": a.s3,
           "machine": {"nproc": os.cpu_count()}, "sizes": {}}
    try:
        node_up(node)
        tail = LogTail(os.path.join(node.home, "logs", "nexusd.log"))
        s3 = node.s3()
        bucket = f"csbd-{os.getpid()}"
        s3.create_bucket(Bucket=bucket)
        names = {}
        for label, size in sizes:
            key = f"in-{size}"
            s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(size))
            for mode in MODES:
                name = f"csbd-{mode[:4]}-{size}"
                deploy(node, name, mode, bucket)
                names[(label, mode)] = name
                t0 = time.time()
                invoke(node, name, {"bucket": bucket, "key": key})   # starts the zygote; warms S3's side
                log(f"{name}: first start (zygote spawn + cold) {1e3 * (time.time() - t0):.0f} ms")
        raw = {(label, mode): [] for label, _ in sizes for mode in MODES}
        for r in range(a.reps):
            for label, size in sizes:
                order = MODES if r % 2 == 0 else MODES[::-1]
                for mode in order:
                    name = names[(label, mode)]
                    wait_no_instances(node, name)
                    p = one(node, tail, name, mode, bucket, f"in-{size}", size)
                    raw[(label, mode)].append(p)
                    log(f"round {r + 1}/{a.reps} {label:>7} {mode:8s} first byte {p['first_byte']:7.1f} ms  "
                        f"restore {p.get('restore', float('nan')):6.1f}  handler {p['handler']:6.1f}  "
                        f"get {p['get']:6.1f}" + (f"  prefetch {p['prefetch']:.1f}" if "prefetch" in p else ""))
            load.append(os.getloadavg()[0])
        for label, size in sizes:
            d = {}
            for mode in MODES:
                rows = raw[(label, mode)]
                d[mode] = {k: summary([x[k] for x in rows if k in x]) for k, _ in COLS + [("get_call", ""),
                                                                                      ("get_read", "")]}
                d[mode]["raw"] = rows
            fb = d["nexus"]["first_byte"]["median"] / d["baseline"]["first_byte"]["median"]
            tot = d["nexus"]["total"]["median"] / d["baseline"]["total"]["median"]
            d["ratio_first_byte"], d["ratio_total"] = fb, tot
            res["sizes"][label] = d
        res["loadavg_1min"] = {"min": min(load), "max": max(load)}
        res["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    finally:
        node.down()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(node.home, ignore_errors=True)
    print(f"cold starts from a zygote, {a.reps} per mode and size, interleaved; ms from the client's send, "
          f"median (min..max); S3: {a.s3}; load average (1 min) {min(load):.1f}..{max(load):.1f}")
    for label, _ in sizes:
        d = res["sizes"][label]
        print(f"\n{label}: nexus/baseline first byte {d['ratio_first_byte']:.2f}, total {d['ratio_total']:.2f} "
              f"(goal <= 0.70)\n")
        print("| phase | nexus (zygote + prefetch hint) | baseline (zygote) |")
        print("|---|---|---|")
        for k, title in COLS:
            print(f"| {title} | {fmt(d['nexus'][k])} | {fmt(d['baseline'][k])} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
        log(f"wrote {a.json}")


if __name__ == "__main__":
    main()
