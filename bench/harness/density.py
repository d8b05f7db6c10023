"""Density: the largest number of warm instances the node holds while the
requests still meet a p99 SLO, at a fixed mean request rate per instance,
driven by an Azure-2019-shaped trace (trace.py).

Rule (also in docs/results.md):
- every instance is one `hello` function deployed with nexus:max-instances 1, so
  N functions = N warm instances; each is invoked once before the step (warm);
- step N: the open-loop trace (N = 1 runs `density_cal_s`, longer: it sets the SLO) for N functions at RATE requests/s per instance on
  average, for `density_s` seconds, the same trace (same seed) for both modes;
- SLO = SLO_FACTOR x the p99 of the baseline at N = 1 under the same trace, the largest
  of CAL_RUNS runs of that step: on this VM ~1-2 % of requests in either mode stall ~10 ms
  (a scheduler tick; seen alike in both modes and in builds before and after the channel
  changes), which puts one run's p99 at 3 ms or at 10 ms by chance; the SLO must be one the
  baseline itself meets run after run;
- a step passes when the p99 over all its requests is <= SLO and no request failed;
  a step that fails is run once more, right away, and passes if that run passes (both
  modes alike: one scheduler blip on this shared 2-CPU VM must not end a mode's climb;
  both runs are recorded);
- density = the largest passing N of the ladder; both modes climb the same ladder in
  lockstep (nexus, then baseline at each N) and stop after their first failure."""
import os
import subprocess

import report
import trace
from node import BIN, ROOT, zip_dir

RATE = 50.0
SLO_FACTOR = 2.0
CAL_RUNS = 3


def _run_step(node, names, seconds, seed, workdir):
    events = trace.generate(names, RATE, seconds, seed, payload='{"name":"d"}')
    sched = os.path.join(workdir, "trace.txt")
    trace.write(events, sched)
    out = os.path.join(workdir, "open.txt")
    try:
        p = subprocess.run([os.path.join(BIN, "nexus-bench-load"), "open", node.ingress, sched, out],
                           capture_output=True, text=True, timeout=seconds * 3 + 60)
    except subprocess.TimeoutExpired:   # the node stopped answering: the step fails
        return [], len(events), len(events)
    lat, failed = [], 0
    for line in open(out):
        _, ns, code = line.split()
        lat.append(int(ns) / 1e6)
        failed += code != "200"
    if p.returncode != 0:
        failed = max(failed, 1)
    return lat, failed, len(events)


def _step(node, names, n, prof, seed, workdir):
    # N = 1 sets the SLO, so it runs longer (enough requests for a p99)
    secs = prof["density_cal_s"] if n == 1 else prof["density_s"]
    lat, failed, count = _run_step(node, names, secs, seed, workdir)
    return {"n": n, "p50": report.pct(lat, 50) if lat else None, "p99": report.pct(lat, 99) if lat else float("inf"),
            "failed": failed, "requests": count, "rate": RATE * n}


def run(node, prof, seed, workdir, log):
    code = zip_dir(os.path.join(ROOT, "functions", "hello"))
    deployed = {"nexus": 0, "baseline": 0}
    steps = {"nexus": [], "baseline": []}
    alive = {"nexus": True, "baseline": True}
    slo = None
    for n in prof["density_ladder"]:
        for mode in ("nexus", "baseline"):
            if not alive[mode]:
                continue
            names = [f"dens-{mode}-{i}" for i in range(n)]
            for i in range(deployed[mode], n):
                node.deploy(names[i], code, mode, memory=128, max_instances=1)
                node.invoke(names[i], {"name": "warm"})
            deployed[mode] = n
            steps[mode].append(_step(node, names, n, prof, seed, workdir))
        if slo is None:
            cal = [steps["baseline"][0]] + [_step(node, ["dens-baseline-0"], 1, prof, seed, workdir)
                                            for _ in range(CAL_RUNS - 1)]
            steps["baseline"][0] = max(cal, key=lambda st: st["p99"])
            steps["baseline"][0]["calibration_p99"] = [st["p99"] for st in cal]
            slo = SLO_FACTOR * steps["baseline"][0]["p99"]
            log(f"density: SLO {slo:.2f} ms = {SLO_FACTOR:g} x the largest baseline N=1 p99 of "
                + ", ".join(f"{v:.2f}" for v in steps["baseline"][0]["calibration_p99"]) + " ms")
        for mode in ("nexus", "baseline"):
            if alive[mode] and steps[mode] and steps[mode][-1]["n"] == n:
                s = steps[mode][-1]
                s["pass"] = s["p99"] <= slo and s["failed"] == 0
                if not s["pass"]:   # once more, right away (see the rule above)
                    log(f"density {mode} N={n}: p99 {s['p99']:.2f} ms (SLO {slo:.2f} ms), failed {s['failed']}: "
                        "failed once, running the step again")
                    again = _step(node, [f"dens-{mode}-{i}" for i in range(n)], n, prof, seed, workdir)
                    again["pass"] = again["p99"] <= slo and again["failed"] == 0
                    again["first_try"] = s
                    steps[mode][-1] = s = again
                alive[mode] = s["pass"]
                log(f"density {mode} N={n}: {s['requests']} requests at {RATE * n:.0f}/s, p99 {s['p99']:.2f} ms "
                    f"(SLO {slo:.2f} ms), failed {s['failed']}: {'pass' if s['pass'] else 'FAIL'}"
                    + (" (second run)" if "first_try" in s else ""))
        if not any(alive.values()):
            break
    # Left in place until the node stops (see cold_func in main.py: stopping
    # baseline instances makes later ones stall).
    best = {m: max([s["n"] for s in steps[m] if s.get("pass")], default=0) for m in steps}
    ceiling = {m: alive[m] for m in steps}   # still passing at the top of the ladder
    return {"rate": RATE, "slo_ms": slo, "slo_factor": SLO_FACTOR, "seed": seed, "seconds": prof["density_s"],
            "steps": steps, "density": best, "ladder_top_reached": ceiling, "sigma": trace.SIGMA, "k": trace.K}
