#!/usr/bin/python3
"""nexus bench: the A/B evaluation of Nexus mode against the baseline mode (and
the sandbox-less floor) on the `process` driver.  See bench/README.md.

    build/bin/nexus bench [--quick|--smoke] [--out docs/results] [--json FILE] [--seed N]

Starts a private node, deploys every example function in both modes, measures
warm latency, cold latency, node CPU and memory per instance for each input
size (nexus and baseline rounds interleaved), the floor (guest-realhost), the
density under a trace shaped like Azure Functions 2019, the spine benchmarks
(bench/spine.py), and writes CSV, JSON, gnuplot PNGs and <out>.md."""
import argparse
import datetime
import gzip
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import density  # noqa: E402
import floor  # noqa: E402
import inputs  # noqa: E402
import measure  # noqa: E402
import report  # noqa: E402
from node import BIN, ROOT, Node, zip_dir  # noqa: E402

FUNCS = ["hello", "image-rotate", "wordcount", "pyaes"]
SIZES = [("1KiB", 1 << 10), ("100KiB", 100 << 10), ("1MiB", 1 << 20), ("10MiB", 10 << 20)]
MODES = ["nexus", "baseline"]
# The floor (issue 5): the same handler as a plain host process on the same nexusd
# channel, no sandbox (nexusd's "host" driver), invoked through the same HTTP ingress
# and storage server, interleaved with the two modes.  floor.py's older "core floor"
# (no ingress, in-memory S3) is kept as a second reference.
FLOOR = "floor"
BUCKET = "bench"
# pyaes is pure Python (~10 us per byte here): 1 MiB takes ~10 s, 10 MiB ~100 s per invocation.
PYAES_MAX = 100 << 10

PROFILES = {
    # warm: seconds of invocations per mode and combo (split over `rounds`), min/max count
    "smoke": dict(sizes=["1KiB"], warm_s=0.3, warm_min=3, warm_max=10, rounds=1, cold=1, floor_max=20,
                  floor_sizes=["1KiB"], density_ladder=[1, 2], density_s=1.0, density_cal_s=2.0, spine_reps=1, cold_funcs=["hello"]),
    "quick": dict(sizes=["1KiB", "100KiB", "1MiB"], warm_s=1.5, warm_min=3, warm_max=300, rounds=2,
                  cold=3, floor_max=200, floor_sizes=["1KiB", "100KiB"], density_ladder=[1, 4, 8, 16, 32],
                  density_s=3.0, density_cal_s=10.0, spine_reps=3),
    "full": dict(sizes=["1KiB", "100KiB", "1MiB", "10MiB"], warm_s=6.0, warm_min=10, warm_max=2000, rounds=4,
                 cold=6, floor_max=1000, floor_sizes=["1KiB", "100KiB", "1MiB"],
                 density_ladder=[1, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48], density_s=6.0,
                 density_cal_s=20.0, spine_reps=5),
}


class LoadSampler:
    """The 1-minute load average every few seconds while the run lasts: the
    machine is shared, and the page says how loaded it was."""

    def __init__(self, every_s=5.0):
        import threading
        self.every_s, self.samples = every_s, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append(float(open("/proc/loadavg").read().split()[0]))
            except (OSError, ValueError):
                pass
            self._stop.wait(self.every_s)

    def summary(self):
        self._stop.set()
        s = sorted(self.samples) or [0.0]
        return {"every_s": self.every_s, "n": len(self.samples), "min": s[0], "max": s[-1],
                "median": s[len(s) // 2]}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fname(func, mode):
    return f"{func}-{mode}"


def event(func, size_label):
    if func == "hello":
        return {"name": "bench"}
    ev = {"bucket": BUCKET, "key": f"in/{func}/{size_label}", "output_key": f"out/{func}/{size_label}"}
    if func == "wordcount":
        ev["top"] = 5
    return ev


def combos(prof):
    out = [("hello", "none", 0)]
    for f in FUNCS[1:]:
        for label, size in SIZES:
            if label in prof["sizes"] and not (f == "pyaes" and size > PYAES_MAX):
                out.append((f, label, size))
    return out


def setup(node, prof, workdir):
    s3 = node.s3()
    s3.create_bucket(Bucket=BUCKET)
    for func, label, size in combos(prof):
        if size:
            data = inputs.make(func, size)
            path = os.path.join(workdir, f"input-{func}-{label}")
            with open(path, "wb") as f:
                f.write(data)
            s3.put_object(Bucket=BUCKET, Key=f"in/{func}/{label}", Body=data)
            log(f"input {func} {label}: {len(data)} bytes")
    for func in FUNCS:
        code = zip_dir(os.path.join(ROOT, "functions", func))
        for mode in MODES:
            node.deploy(fname(func, mode), code, mode, memory=512, buckets=[BUCKET], max_instances=1)
        node.deploy(fname(func, FLOOR), code, "nexus", memory=512, buckets=[BUCKET], max_instances=1,
                    sandbox="host")
    log(f"deployed {len(FUNCS)} functions x {len(MODES)} modes + the floor (no sandbox)")


def run_closed(node, fn, payload_path, n, warm, out):
    p = subprocess.run([os.path.join(BIN, "nexus-bench-load"), "closed", node.ingress, fn, payload_path,
                        str(n), str(warm), out], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"load generator on {fn}: {p.stderr.strip()[-800:]}")
    failed = json.loads(p.stdout)["failed"]
    if failed:
        log(f"  {fn}: {failed} failed request(s): {p.stderr.strip().splitlines()[0][:400]}")
    return [int(x) / 1e6 for x in open(out).read().split()], failed, p.stderr.strip()[:400]   # ms


def warm_combo(node, prof, func, label, workdir):
    """Warm latency, CPU per invocation and memory per instance for one
    (function, size); nexus and baseline alternate round by round."""
    ev = event(func, label)
    payload = os.path.join(workdir, f"event-{func}-{label}.json")
    with open(payload, "w") as f:
        json.dump(ev, f)
    est = []
    everyone = MODES + [FLOOR]
    for mode in everyone:   # makes the instance warm and checks the function works
        node.invoke(fname(func, mode), ev)
        est.append(node.invoke(fname(func, mode), ev)[0])
    n_total = int(min(prof["warm_max"], max(prof["warm_min"], prof["warm_s"] / max(est))))
    per_round = max(1, math.ceil(n_total / prof["rounds"]))
    res = {m: {"lat": [], "cpu": {"nexusd": 0, "relay": 0, "sandboxes": 0, "s3": 0}, "count": 0, "loadgen": 0.0,
                "errors": 0, "error_text": ""}
           for m in everyone}
    pids = node.pids()
    for r in range(prof["rounds"]):
        for mode in (everyone if r % 2 == 0 else everyone[::-1]):
            warm = 1
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            s0 = measure.CpuSnapshot(pids)
            lat, failed, err = run_closed(node, fname(func, mode), payload, per_round, warm,
                                          os.path.join(workdir, "lat.txt"))
            s1 = measure.CpuSnapshot(pids)
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            d = res[mode]
            d["lat"] += lat
            d["errors"] += failed
            if err and not d["error_text"]:
                d["error_text"] = err
            for k, v in s1.delta(s0).items():
                d["cpu"][k] += v
            d["count"] += per_round + warm
            d["loadgen"] += (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) * 1e9
    st = node.nexus_status()
    for mode in MODES:
        d = res[mode]
        insts = [i for i in st["instances"] if i["function"] == fname(func, mode)]
        mems = [measure.instance_memory(i["pid"]) for i in insts if i.get("pid")]
        d["mem"] = mems[0] if mems else None
        d["instances"] = len(insts)
    log(f"warm {func} {label}: " + ", ".join(
        f"{m} p50 {report.pct(res[m]['lat'], 50):.2f} ms ({len(res[m]['lat'])} inv)" for m in everyone))
    return res


def cold_func(node, prof, func, label):
    code = zip_dir(os.path.join(ROOT, "functions", func))
    out = {m: [] for m in MODES}
    for i in range(prof["cold"]):
        for mode in (MODES if i % 2 == 0 else MODES[::-1]):
            name = f"cold{i}-{func}-{mode}"
            node.deploy(name, code, mode, memory=512, buckets=[BUCKET], max_instances=1)
            # Not deleted until the node stops: a baseline instance started after
            # another one was stopped can stall ~70 s on its first request (see
            # docs/results.md, "Known problems"), which is not what we measure.
            dt, _ = node.invoke(name, event(func, label))
            out[mode].append(dt * 1e3)
    log(f"cold {func}: " + ", ".join(f"{m} median {report.pct(out[m], 50):.1f} ms" for m in MODES))
    return out


def main():
    ap = argparse.ArgumentParser(prog="nexus bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few minutes: fewer invocations and steps")
    ap.add_argument("--smoke", action="store_true", help="seconds: a handful of invocations (test-bench)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "results"),
                    help="directory for CSV/PNG/JSON; the page goes to OUT.md (default docs/results)")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--seed", type=int, default=2019, help="seed of the density trace (default 2019)")
    ap.add_argument("--no-density", action="store_true")
    ap.add_argument("--no-spine", action="store_true")
    ap.add_argument("--profile", action="store_true", help="also record perf profiles (time and bytes)")
    ap.add_argument("--s3", choices=["s3peer", "s3rver"], default="s3peer",
                    help="storage server: nexus-s3peer (bench/s3peer, fast, default) or the local s3rver "
                         "(npm, ~1k requests/s, what the tests use)")
    ap.add_argument("--report-only", action="store_true",
                    help="measure nothing: redraw OUT.md and the plots from OUT/raw.json.gz of the last run")
    args = ap.parse_args()
    if args.report_only:
        out = os.path.abspath(args.out)
        with gzip.open(os.path.join(out, "raw.json.gz"), "rt") as f:
            results = json.load(f)
        rows = report.write_all(results, out, args.json)
        log(f"redrawn: {out}.md, {len(rows)} result rows")
        return
    pname = "smoke" if args.smoke else "quick" if args.quick else "full"
    prof = PROFILES[pname]
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    workdir = os.path.join(out, ".work")
    os.makedirs(workdir, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    cmd = "build/bin/nexus bench " + " ".join(sys.argv[1:])
    log(f"nexus bench ({pname}): results into {out}")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # so `finally` stops the node
    load = LoadSampler()
    node = Node(s3=args.s3)
    results = {"profile": pname, "started": started.isoformat(timespec="seconds"), "command": cmd,
               "seed": args.seed, "s3": args.s3, "warm": {}, "cold": {}, "floor": {}, "density": None, "spine": None}
    log(f"starting a private node (nexus up), storage server: {args.s3}")
    node.up()
    try:
        results["node"] = {"ingress": node.ingress, "pids": node.pids()}
        setup(node, prof, workdir)
        for func, label, _ in combos(prof):
            results["warm"][f"{func}/{label}"] = warm_combo(node, prof, func, label, workdir)
        for func in prof.get("cold_funcs", FUNCS):
            label = "none" if func == "hello" else "1KiB"
            results["cold"][func] = cold_func(node, prof, func, label)
        if args.profile:
            import profile_run
            results["profiles"] = profile_run.run(node, out, workdir, log, event)
        if not args.no_density:   # last: it may overload the node
            try:
                results["density"] = density.run(node, prof, args.seed, workdir, log)
            except Exception as e:  # noqa: BLE001 - keep the other measurements
                log(f"density failed: {e}")
    finally:
        node.down()
    for func, label, size in combos(prof):
        if label == "none" or label in prof["floor_sizes"]:
            n = len(results["warm"][f"{func}/{label}"]["nexus"]["lat"])
            results["floor"][f"{func}/{label}"] = floor.run(
                func, event(func, label), os.path.join(workdir, f"input-{func}-{label}") if size else None,
                max(20, min(prof["floor_max"], n)), log)
    if not args.no_spine:
        import spine
        results["spine"] = spine.run(prof["spine_reps"], log, quick=pname != "full")
    results["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results["loadavg"] = load.summary()
    results["machine"] = report.machine()
    with gzip.open(os.path.join(out, "raw.json.gz"), "wt") as f:   # every latency: --report-only redraws it
        json.dump(results, f)
    shutil.rmtree(workdir, ignore_errors=True)   # inputs (up to 10 MiB each), traces
    rows = report.write_all(results, out, args.json)
    log(f"done: {out}.md, {len(rows)} result rows")


if __name__ == "__main__":
    main()
