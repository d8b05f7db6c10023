#!/usr/bin/python3
"""bench/vm-density: the traces for in-l1.sh and the page from its raw log.

  report.py traces DIR PROFILE      writes DIR/params.txt and DIR/step-N-MODE.txt
  report.py page LOG OUT.md PROFILE STARTED COMMAND

The traces come from bench/harness/trace.py (imported, not copied): seed 2019, payload and
function names as bench/harness/density.py uses them, so the two modes of a step get the same
arrival times.  The page recomputes every step's p50/p99/failures from the raw latencies
(DLAT lines) and applies density.py's rule itself; where L1's own decision (DDECIDE) differs,
it says so.  A run the rig did not finish is shown as such: the steps it never reached are
listed as missing, and a density is then only a lower bound."""
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
import trace  # noqa: E402  (bench/harness/trace.py)

SEED = 2019
PAYLOAD = '{"name":"d"}'   # as bench/harness/density.py
MODES = ("nexus", "baseline")
# Under TCG a hello call costs ~7 ms (nexus) / ~15 ms (baseline) warm, 30-50x the process
# driver, and each instance is a fresh ~5-30 s boot: rate and ladder are cut to fit ~25 min.
PROFILES = {
    "quick": {"ladder": [1, 2, 4], "rate": 4.0, "cal_s": 30, "step_s": 20, "cal_runs": 3,
              "slo_factor": 2.0, "budget_s": 900},
    "full": {"ladder": [1, 2, 3, 4, 6, 8, 10, 12], "rate": 4.0, "cal_s": 60, "step_s": 30, "cal_runs": 3,
             "slo_factor": 2.0, "budget_s": 1800},
}


def pct(values, p):
    """The harness's percentile (bench/harness/report.py pct): sorted[min(n-1, int(n*p/100))]."""
    if not values:
        return float("inf")
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def write_traces(outdir, profile):
    prof = PROFILES[profile]
    os.makedirs(outdir, exist_ok=True)
    counts = {}
    for n in prof["ladder"]:
        secs = prof["cal_s"] if n == prof["ladder"][0] else prof["step_s"]
        for mode in MODES:
            events = trace.generate([f"dens-{mode}-{i}" for i in range(n)], prof["rate"], secs, SEED, payload=PAYLOAD)
            trace.write(events, os.path.join(outdir, f"step-{n}-{mode}.txt"))
            counts[(n, mode)] = len(events)
    with open(os.path.join(outdir, "params.txt"), "w") as f:
        f.write(" ".join(str(x) for x in (",".join(map(str, prof["ladder"])), prof["rate"], prof["cal_s"],
                                          prof["step_s"], prof["cal_runs"], prof["slo_factor"], prof["budget_s"])) + "\n")
    return counts


# ---- parsing the raw log ----------------------------------------------------------------

def parse(lines):
    r = {"meta": {}, "host": {}, "warm": {m: [] for m in MODES}, "inst": {m: [] for m in MODES}, "runs": {},
         "decide": {}, "slo_l1": None, "hostload": [], "idle": [], "threads": {}, "stops": [], "end": None, "errors": []}
    for line in lines:
        line = line.rstrip("\n")
        w = line.split()
        if not w:
            continue
        try:
            k = w[0]
            if k == "DMETA" and len(w) >= 2:
                r["meta"][w[1]] = " ".join(w[2:])
            elif k == "DHOST" and len(w) >= 2:
                r["host"][w[1]] = " ".join(w[2:])
            elif k == "DWARM" and w[1] in MODES:
                r["warm"][w[1]].append({"i": int(w[2]), "ms": int(w[3]), "rc": int(w[4]), "text": " ".join(w[5:])})
            elif k == "DINST" and w[1] in MODES:
                r["inst"][w[1]].append({"i": int(w[2]), "rss_kb": int(w[4]), "pss_kb": int(w[5])})
            elif k == "DLAT" and w[1] in MODES:
                run = r["runs"].setdefault((w[1], int(w[2]), w[3]), {})
                lat, bad = [], 0
                for item in w[4:]:
                    code, ns = item.split(":")
                    lat.append(int(ns) / 1e6)
                    bad += code != "200"
                run.update(lat=lat, bad=bad)
            elif k == "DRUN" and w[1] in MODES:
                run = r["runs"].setdefault((w[1], int(w[2]), w[3]), {})
                run.update(requests=int(w[4]), l1_failed=int(w[5]), loadgen_rc=int(w[8]), seconds=int(w[9]))
            elif k == "DMEM" and w[1] in MODES:
                run = r["runs"].setdefault((w[1], int(w[2]), w[3]), {})
                run.update(monitors=int(w[4]), rss_kb=int(w[5]), pss_kb=int(w[6]))
            elif k == "DL1" and w[1] in MODES:
                run = r["runs"].setdefault((w[1], int(w[2]), w[3]), {})
                run.update(l1_total_kb=int(w[4]), l1_avail_kb=int(w[5]), l1_free_kb=int(w[6]), l1_load1=w[7])
            elif k == "DSPEED" and w[1] in MODES:
                r["runs"].setdefault((w[1], int(w[2]), w[3]), {})["speed_ms"] = int(w[4])
            elif k == "DIDLE" and w[1] in MODES:
                secs = float(w[4])
                r["idle"].append({"nominal": "." not in w[4],"mode": w[1], "n": int(w[2]), "try": w[3], "nexus_vms": int(w[5]),
                                  "nexus_pct": int(w[6]) / secs, "baseline_vms": int(w[7]),
                                  "baseline_pct": int(w[8]) / secs, "l1_busy_pct": int(w[9]) / 10})
            elif k == "DTHREADS" and w[4] in MODES:
                r["threads"][w[4]] = {"at": f"before {w[1]} N={w[2]} try {w[3]}", "threads": w[6:]}
            elif k == "DHOSTLOAD":
                r["hostload"].append(float(w[2]))
            elif k == "DSLO":
                r["slo_l1"] = float(w[1])
            elif k == "DDECIDE" and w[1] in MODES:
                r["decide"].setdefault((w[1], int(w[2])), []).append(w[3])
            elif k == "DSTOP":
                r["stops"].append(" ".join(w[1:]))
            elif k == "DEND":
                r["end"] = int(w[1])
        except (IndexError, ValueError):
            r["errors"].append(line[:200])
    return r


def run_stats(run):
    """p50/p99/failed of one run from its raw latencies; None if the run has no DRUN line
    (the rig stopped during it)."""
    if "requests" not in run:
        return None
    lat = run.get("lat", [])
    failed = run.get("bad", 0) + max(0, run["requests"] - len(lat))
    if run.get("loadgen_rc", 0) != 0:
        failed = max(failed, 1)
    return {"requests": run["requests"], "p50": pct(lat, 50), "p99": pct(lat, 99), "failed": failed,
            "monitors": run.get("monitors"), "pss_kb": run.get("pss_kb"), "rss_kb": run.get("rss_kb"),
            "l1_avail_kb": run.get("l1_avail_kb"), "l1_total_kb": run.get("l1_total_kb"),
            "l1_load1": run.get("l1_load1"), "seconds": run.get("seconds"), "speed_ms": run.get("speed_ms")}


def evaluate(r, prof):
    """density.py's rule over the runs found: the SLO, per mode the steps (with their
    tries), the density and whether the climb ended by a failure, the ladder top or a stop."""
    ladder = prof["ladder"]
    factor = float(r["meta"].get("slo_factor", prof["slo_factor"]))
    cal_runs = int(r["meta"].get("cal_runs", prof["cal_runs"]))
    first = ladder[0]
    cal = [run_stats(r["runs"][("baseline", first, f"cal{c}")]) for c in range(1, cal_runs + 1)
           if ("baseline", first, f"cal{c}") in r["runs"]]
    cal = [c for c in cal if c]
    slo = factor * max(c["p99"] for c in cal) if len(cal) == cal_runs else None
    for c in cal:
        c["pass"] = slo is not None and c["p99"] <= slo and c["failed"] == 0
    out = {"slo": slo, "cal": cal, "factor": factor, "modes": {}}
    for mode in MODES:
        steps, density, end = [], 0, "ladder top reached, still passing"
        for n in ladder:
            if mode == "baseline" and n == first:
                tries = [max(cal, key=lambda c: c["p99"])] if len(cal) == cal_runs else []
            else:
                tries = [s for s in [run_stats(r["runs"][(mode, n, "1")])] if s] if (mode, n, "1") in r["runs"] else []
            if not tries or slo is None:
                end = f"stopped before N={n} was measured"
                steps.append({"n": n, "missing": True})
                break
            again = run_stats(r["runs"].get((mode, n, "2"), {}))
            for t in tries + ([again] if again else []):
                t["pass"] = t["p99"] <= slo and t["failed"] == 0
            st = {"n": n, "tries": tries + ([again] if again else []), "missing": False}
            if tries[0]["pass"]:
                st["pass"] = True
            elif again is None:
                st["pass"] = None   # failed once, the rerun never came: undecided
                st["missing"] = True
                end = f"stopped during N={n}'s rerun"
            else:
                st["pass"] = again["pass"]
            l1 = r["decide"].get((mode, n), [])
            mine = "pass" if st["pass"] else ("fail" if st["pass"] is False else None)
            if l1 and mine and l1[-1] != mine:
                st["disagree"] = f"L1 decided {l1[-1]}"
            steps.append(st)
            if st["pass"] is None:
                break
            if not st["pass"]:
                end = f"failed N={n}"
                break
            density = n
        out["modes"][mode] = {"steps": steps, "density": density, "end": end}
    return out


# ---- the page ---------------------------------------------------------------------------

def _f(x, d=1):
    if x is None:
        return "–"
    if x == float("inf"):
        return "∞"
    return f"{x:.{d}f}"


def _mib(kb):
    return "–" if kb is None else f"{kb / 1024:.0f}"


def page(r, ev, prof, profile, started, command):
    m, h = r["meta"], r["host"]
    rate = float(m.get("rate", prof["rate"]))
    ladder = m.get("ladder", ",".join(map(str, prof["ladder"])))
    L = []
    L.append("# Density on the `vm` driver: nexus vs baseline microVMs in the nested rig\n")
    L.append(f"Generated by `{command}` (bench/vm-density/README.md), started {started}, finished "
             f"{h.get('finished', '?')}; profile **{profile}**. The process driver's density is in "
             "[results.md](results.md) (\"Density\"); the vm A/B's other metrics in [results-vm-ab.md](results-vm-ab.md).\n")
    rig = h.get("rig_exit", "?")
    complete = r["end"] is not None and not r["stops"] and rig == "0"
    if not complete:
        why = "; ".join(r["stops"]) or ("L1 never reported its end" if r["end"] is None else "")
        L.append(f"**Incomplete run**: rig exit status {rig} (124 timeout, 126 L1 stalled, 125 rig failure)"
                 + (f"; {why}" if why else "") + ". What is missing is marked below; a density "
                 "from an unfinished climb is a lower bound.\n")
    # Result line
    d = {mode: ev["modes"][mode]["density"] for mode in MODES}
    ends = {mode: ev["modes"][mode]["end"] for mode in MODES}
    def dtxt(mode):
        e = ends[mode]
        if d[mode] == 0:
            return f"{mode} **none** (never passed N={prof['ladder'][0]}: {e})"
        bound = "≥ " if not e.startswith("failed") else ""
        return f"{mode} **{bound}{d[mode]}** ({e})"
    L.append("Density: " + ", ".join(dtxt(x) for x in MODES) + "."
             + (f" Ratio nexus/baseline **{d['nexus'] / d['baseline']:.2f}**"
                + (" (at least one side is a lower bound)" if any(not ends[x].startswith("failed") for x in MODES) else "")
                + "." if d["baseline"] else " No ratio: the baseline passed no step.") + "\n")
    if ev["slo"] is not None:
        L.append(f"SLO **{ev['slo']:.1f} ms** = {ev['factor']:g} x the largest of the baseline's N={prof['ladder'][0]} "
                 "p99s (" + ", ".join(_f(c["p99"]) for c in ev["cal"]) + " ms).\n")
    else:
        L.append("SLO: **not set**: the baseline's calibration runs at N=1 did not all finish.\n")

    L.append("## Rule\n")
    L.append("As on the process driver (bench/harness/density.py, docs/results.md \"Density\"): N instances = N `hello` "
             "functions per mode (`dens-MODE-0..N-1`, `--memory 128`, `--max-instances 1`), each warmed by one call "
             "before its first step; an open-loop trace (`nexus-bench-load open`) drives them; SLO = "
             f"{ev['factor']:g} x the baseline's p99 at N=1 under the same trace, the largest of "
             f"{m.get('cal_runs', prof['cal_runs'])} runs of that step; a step passes when the p99 over all its requests "
             "is <= SLO and no request failed; a step that fails runs once more right away and passes if that run does; "
             "density = the largest passing N; both modes climb the same ladder in lockstep (nexus, then baseline, at "
             "each N) and a mode stops after its failure. Both modes' instances stay deployed until the end, so every "
             "step runs next to the other mode's idle VMs (as in density.py, where instances are left in place too).\n")
    L.append("## Trace and ladder\n")
    L.append(f"- bench/harness/trace.py (Azure-2019-shaped, imported by report.py on the host), seed {SEED}, payload "
             f"`{PAYLOAD}`: per-function mean rate r·X/mean(X), X ~ LogNormal(0, {trace.SIGMA}); inter-arrival times "
             f"~ Gamma(k = {trace.K}, mean 1/r_i), coefficient of variation {1 / trace.K ** 0.5:g}; random phase per "
             "function. Both modes of a step get the same arrival times.")
    L.append(f"- r = **{rate:g} requests/s per instance**, ladder **{ladder}**, N=1 runs {m.get('cal_s', prof['cal_s'])} s "
             f"(it sets the SLO), the other steps {m.get('step_s', prof['step_s'])} s each; time budget "
             f"{m.get('budget_s', prof['budget_s'])} s in L1 (no new step starts after it).")
    L.append("- Why these numbers: under TCG a warm hello call costs ~7 ms (nexus) / ~15 ms (baseline) of latency and "
             "~6 / ~18 ms of L1 CPU (docs/results-vm-ab.md), 30-50x the process driver, and every instance is a fresh "
             "boot of 5-30 s; the process driver's 50 requests/s per instance would saturate L1's 2 vCPUs at N=1-2. "
             f"At {rate:g}/s the baseline's N=1 is far from saturation, N=12 offers {12 * rate:g} requests/s to each "
             "mode (~0.9 vCPU of baseline work), a 30 s step has >= 200 requests from N=2 on (a p99 is then the 3rd "
             "slowest or worse), and the climb (24 boots + ~15 runs) fits in ~25 min of L1 time.\n")

    L.append("## Steps\n")
    L.append("Every try of a step is a row (*try 2* = the rerun of a failed step; the baseline's N=1 is the worst of "
             "its calibration runs, all listed). p50/p99 over all requests of the try (latency from the scheduled "
             "time, failed ones included, the harness's nearest-rank percentile), recomputed from the raw latencies. "
             "Monitors = live `nexus-vmm` processes of the mode after the try, PSS/RSS summed over them "
             "(guest RAM touched + the monitor); L1 avail = MemAvailable in L1 then; L1 slowness = a fixed awk loop in L1 "
             "timed just before the try, in ms (the host is shared: when other rigs and builds run, L1 and every "
             "latency slow down with it; compare tries by it).\n")
    L.append("| mode | N | try | requests | rate/s | p50 ms | p99 ms | SLO ms | failed | pass | monitors | PSS MiB | RSS MiB | L1 avail MiB | L1 load1 | L1 slowness ms |")
    L.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|")
    slo = ev["slo"]
    for mode in MODES:
        for st in ev["modes"][mode]["steps"]:
            n = st["n"]
            if st["missing"] and not st.get("tries"):
                L.append(f"| {mode} | {n} | – | – | {rate * n:g} | – | – | {_f(slo)} | – | **not run** ({ev['modes'][mode]['end']}) | – | – | – | – | – | – |")
                continue
            rows = []
            if mode == "baseline" and n == prof["ladder"][0]:
                rows += [(f"cal{i + 1}" + (" (worst)" if c is st["tries"][0] else ""), c) for i, c in enumerate(ev["cal"])]
                rows += [("2", t) for t in st["tries"][1:]]
            else:
                rows += [(str(i + 1), t) for i, t in enumerate(st["tries"])]
            for label, t in rows:
                verdict = "yes" if t["pass"] else "**no**"
                L.append(f"| {mode} | {n} | {label} | {t['requests']} | {rate * n:g} | {_f(t['p50'])} | {_f(t['p99'])} | "
                         f"{_f(slo)} | {t['failed']} | {verdict} | {t['monitors'] if t['monitors'] is not None else '–'} | "
                         f"{_mib(t['pss_kb'])} | {_mib(t['rss_kb'])} | {_mib(t['l1_avail_kb'])} | {t['l1_load1'] or '–'} | {t['speed_ms'] if t['speed_ms'] is not None else '–'} |")
            if st["pass"] is None:
                L.append(f"| {mode} | {n} | 2 | – | {rate * n:g} | – | – | {_f(slo)} | – | **not run** (the rig stopped before the rerun) | – | – | – | – | – | – |")
            if st.get("disagree"):
                L.append(f"| {mode} | {n} | | | | | | | | note: the page's rule says {'pass' if st['pass'] else 'fail'}, {st['disagree']} | | | | | | |")
    L.append("")

    if r["idle"]:
        L.append("## What idle VMs cost L1\n")
        L.append("Just before each try, 5 s with no request in flight: the CPU all monitors of each mode used (USER_HZ "
                 "ticks = % of one L1 vCPU), per VM, and how busy L1's two vCPUs were. Under nested TCG an idle guest "
                 "is not free (its timer and housekeeping exits are emulated), and both modes' VMs stay resident, so "
                 "this load is under every step."
                 + (" **≤**: a window recorded as its nominal 5 s (in-l1.sh before it timed the window); the /proc "
                    "scans around the sleep make it longer under load, so the real share is lower."
                    if any(x["nominal"] for x in r["idle"]) else "") + "\n")
        L.append("| before | N | try | nexus VMs | % of a vCPU per idle nexus VM | baseline VMs | % per idle baseline VM | L1 busy % |")
        L.append("|---|---:|---|---:|---:|---:|---:|---:|")
        for x in r["idle"]:
            per = lambda k: (("≤ " if x["nominal"] else "") + f"{x[k + '_pct'] / x[k + '_vms']:.1f}"  # noqa: E731
                             if x[k + "_vms"] else "–")
            L.append(f"| {x['mode']} | {x['n']} | {x['try']} | {x['nexus_vms']} | {per('nexus')} | {x['baseline_vms']} | "
                     f"{per('baseline')} | {x['l1_busy_pct']:.0f} |")
        L.append("")
        shares = {k: [x[k + "_pct"] / x[k + "_vms"] for x in r["idle"] if x[k + "_vms"]] for k in MODES}
        if all(shares.values()):
            L.append("Median share per idle VM: nexus " + f"{statistics.median(shares['nexus']):.0f} %, baseline "
                     f"{statistics.median(shares['baseline']):.0f} % of an L1 vCPU: alike in both modes (same guest "
                     "kernel), so the idle cost lowers both densities rather than separating them. The guest kernel "
                     "of this run (guest/kernel, tinyconfig + nexus-guest.config) has a periodic 250 Hz tick "
                     "(CONFIG_HZ_PERIODIC, CONFIG_HZ=250): an idle guest still takes 250 timer exits a second, each "
                     "emulated at great cost under nested TCG. Nearly all of an idle monitor's CPU is in one of its threads "
                     "(`vcpuN` runs the guest, `virtio-net-rx` receives for it; a monitor from before 9aec21b shows "
                     "every thread as nexus-vmm):\n")
        for mode, t in r["threads"].items():
            L.append(f"- where one idle {mode} monitor's CPU went ({t['at']}, over the idle window, ticks of 10 ms per thread): "
                     + ", ".join(f"`{x}`" for x in t["threads"]))
        L.append("")

    L.append("## Memory per instance (the other density limit: L1's RAM)\n")
    L.append("PSS/RSS of each instance's monitor right after its warm-up call (guest RAM is the monitor's memfd, so "
             "PSS counts the guest pages touched; nothing is shared between VMs), and the warm-up call (a fresh boot "
             "+ the first call).\n")
    L.append("| mode | instances warmed | failed warm-ups | warm-up ms median [min–max] | PSS MiB per instance median [min–max] |")
    L.append("|---|---:|---:|---|---|")
    for mode in MODES:
        w, ins = r["warm"][mode], r["inst"][mode]
        ms = [x["ms"] for x in w if x["rc"] == 0]
        pss = [x["pss_kb"] / 1024 for x in ins]
        rng = lambda v, d=0: f"{statistics.median(v):.{d}f} [{min(v):.{d}f}–{max(v):.{d}f}]" if v else "–"  # noqa: E731
        L.append(f"| {mode} | {len(w)} | {sum(1 for x in w if x['rc'] != 0)} | {rng(ms)} | {rng(pss, 1)} |")
    tot = m.get("l1_memtotal_kb")
    if tot:
        L.append(f"\nL1 has {int(tot) // 1024} MiB (rig `--mem`, see README); its lowest MemAvailable during the run: "
                 + (f"{min(x['l1_avail_kb'] for x in r['runs'].values() if 'l1_avail_kb' in x) // 1024} MiB."
                    if any('l1_avail_kb' in x for x in r["runs"].values()) else "not recorded."))
    bad = [(mode, x) for mode in MODES for x in r["warm"][mode] if x["rc"] != 0]
    for mode, x in bad:
        L.append(f"\n- warm-up of dens-{mode}-{x['i']} failed (exit {x['rc']}, {x['ms']} ms): {x['text'][:160]}")
    L.append("")

    L.append("## Conditions\n")
    L.append("**Caveat: TCG.** This machine has no KVM. The microVMs run in L2 under L1's KVM on *emulated* SVM, inside "
             "QEMU TCG (rig/run-l1). Every VM exit costs orders of magnitude more than on hardware and guest code runs "
             "at emulation speed (a hello call takes ~30-50x as long as on the process driver), so absolute numbers "
             "(latencies, the SLO, the densities themselves) mean little; the comparison says which stack costs more "
             "exits and more guest work per request, which is what limits how many instances L1 can serve. On "
             "hardware KVM both densities would be much higher and the ratio may differ.\n")
    L.append(f"- one rig boot (L1: {m.get('nproc', '?')} vCPUs, {int(tot) // 1024 if tot else '?'} MiB), one nexusd with the "
             f"`vm` driver, guests {m.get('guest_memory_mb', '?')} MiB, S3 = nexus-s3peer on L1's loopback (hello does "
             "not touch it); the load generator runs in L1 too (same for both modes)")
    L.append(f"- snapshots **{m.get('snapshots', '?')}** for both modes: baseline vm instances cannot snapshot "
             "(nexus-vmm refuses --net snapshots), and in nexus mode a snapshot's key includes the function name, so "
             "each dens-nexus-I would boot fresh anyway and only add a 128 MiB memory file in L1's RAM (the initramfs). "
             "Every instance here is a fresh boot, in both modes")
    L.append(f"- host (2 cores, shared with other engineers' builds and rigs) load average {h.get('host_loadavg_start', '?')} "
             f"at the start, {h.get('host_loadavg_end', '?')} at the end"
             + (f", 1-minute load sampled every 30 s during the run: median {statistics.median(r['hostload']):.1f}, "
                f"min {min(r['hostload']):.1f}, max {max(r['hostload']):.1f}" if r["hostload"] else "")
             + f"; L1 load average at the end {m.get('l1_loadavg_end', '?')}")
    L.append(f"- rig exit status {rig}; {r['end'] if r['end'] is not None else '?'} s in L1")
    for s in r["stops"]:
        L.append(f"- the climb stopped: {s}")
    if r["errors"]:
        L.append(f"- {len(r['errors'])} raw line(s) could not be read, e.g. `{r['errors'][0][:100]}`")
    L.append("\nThe raw log (every latency) is `build/vm-density/rig-PROFILE.log`; redraw the page with "
             "`/usr/bin/python3 bench/vm-density/report.py page LOG OUT.md PROFILE STARTED COMMAND`.\n")
    return "\n".join(L)


def main(argv):
    if len(argv) == 4 and argv[1] == "traces" and argv[3] in PROFILES:
        counts = write_traces(argv[2], argv[3])
        for (n, mode), c in sorted(counts.items()):
            if mode == "nexus":
                print(f"vm-density: N={n}: {c} requests per mode")
        return 0
    if len(argv) == 7 and argv[1] == "page" and argv[4] in PROFILES:
        _, _, log, out, profile, started, command = argv
        lines = open(log, errors="replace").read().splitlines() if os.path.exists(log) else []
        r = parse(lines)
        ev = evaluate(r, PROFILES[profile])
        text = page(r, ev, PROFILES[profile], profile, started, command)
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            f.write(text)
        print(f"vm-density: wrote {out}: density nexus {ev['modes']['nexus']['density']} "
              f"({ev['modes']['nexus']['end']}), baseline {ev['modes']['baseline']['density']} "
              f"({ev['modes']['baseline']['end']})")
        return 0
    print(__doc__.split("\n\n")[0], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
