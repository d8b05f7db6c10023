#!/usr/bin/python3
"""make test-vm-density: the host side of bench/vm-density without the rig (the rig run takes
~25 min of TCG and is not a unit test).  Checks:
- the traces: bench/harness/trace.py's, the same arrival times for both modes, N=1 longer;
- the harness's percentile; the SLO = factor x the largest calibration p99;
- pass / fail / pass-on-rerun / fail-twice, a failed request failing a step under the SLO,
  a request that never came back counted as failed; density and the ratio;
- a run the rig did not finish: undecided and unreached steps shown as not run, densities as
  lower bounds; a mode that never passed N=1 said so; no log at all.
Writes $NEXUS_TEST_RESULTS/test-vm-density.counts."""
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from checks import check, finish  # noqa: E402
import report  # noqa: E402



def run(mode, n, try_, p99_ms, count=100, codes=None, requests=None, pss_mib=40):
    """Raw lines of one run: `count` requests whose nearest-rank p99 is p99_ms (the rest 5 ms)."""
    lat = [5.0] * (count - 2) + [p99_ms, p99_ms]
    codes = codes or {}
    items = " ".join(f"{codes.get(i, 200)}:{int(v * 1e6)}" for i, v in enumerate(lat))
    req = requests if requests is not None else count
    nbad = sum(1 for c in codes.values() if c != 200) + req - count
    return [f"DTHREADS {mode} {n} {try_} {mode} 123 nexus-vmm:1 vcpu0:{n}", f"DIDLE {mode} {n} {try_} 5.0 2 30 1 40 655", f"DSPEED {mode} {n} {try_} 777", f"DLAT {mode} {n} {try_} {items}",
            f"DRUN {mode} {n} {try_} {req} {nbad} 5.000 {p99_ms:.3f} 0 30",
            f"DMEM {mode} {n} {try_} {n} {n * (pss_mib + 10) * 1024} {n * pss_mib * 1024}",
            f"DL1 {mode} {n} {try_} 3000000 2000000 1500000 1.50"]


def page_of(lines, profile="quick"):
    with tempfile.TemporaryDirectory() as tmp:
        log, out = os.path.join(tmp, "rig.log"), os.path.join(tmp, "page.md")
        if lines is not None:
            open(log, "w").write("\n".join(lines) + "\n")
        p = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "report.py"), "page", log, out, profile,
                            "2026-01-01 00:00 UTC", f"bench/vm-density/run.sh {profile}"], capture_output=True, text=True)
        return p.returncode, (open(out).read() if os.path.exists(out) else ""), p.stderr


def rows(page, mode, n):
    """The rows of the Steps table for MODE's step N."""
    steps = page.split("## Steps", 1)[-1].split("\n## ", 1)[0]
    return [x for x in steps.splitlines() if x.startswith(f"| {mode} | {n} |")]


# ---- traces -------------------------------------------------------------------------------
with tempfile.TemporaryDirectory() as tmp:
    counts = report.write_traces(tmp, "quick")
    prof = report.PROFILES["quick"]
    params = open(os.path.join(tmp, "params.txt")).read().split()
    check(params[0] == "1,2,4" and float(params[1]) == prof["rate"] and len(params) == 7,
          f"params.txt: ladder, rate, ... ({params})")
    t4 = {m: [x.split(" ", 2) for x in open(os.path.join(tmp, f"step-4-{m}.txt")).read().splitlines()] for m in report.MODES}
    check([x[0] for x in t4["nexus"]] == [x[0] for x in t4["baseline"]], "both modes get the same arrival times")
    check({x[1] for x in t4["nexus"]} <= {f"dens-nexus-{i}" for i in range(4)} and
          {x[1] for x in t4["baseline"]} <= {f"dens-baseline-{i}" for i in range(4)}, "function names dens-MODE-I")
    check(all(x[2] == report.PAYLOAD for x in t4["nexus"]), "payload as density.py's")
    t1 = [int(x.split()[0]) for x in open(os.path.join(tmp, "step-1-nexus.txt"))]
    check(max(t1) < prof["cal_s"] * 1e6 and max(t1) > prof["step_s"] * 1e6, "N=1 (the calibration) runs cal_s, longer")
    ev = report.trace.generate(["dens-nexus-0", "dens-nexus-1"], prof["rate"], prof["step_s"], report.SEED, report.PAYLOAD)
    check(counts[(2, "nexus")] == len(ev), "trace = bench/harness/trace.py's generate, seed 2019")

check(report.pct([float(i) for i in range(1, 101)], 99) == 100.0 and report.pct([float(i) for i in range(1, 101)], 50) == 51.0,
      "percentile as bench/harness/report.py's pct")

# ---- a complete run (quick ladder 1,2,4) ---------------------------------------------------
# calibration p99s 10, 20, 15 -> SLO 40.  nexus: N=1 30 pass, N=2 35 pass, N=4 under the SLO
# but one request 502 -> rerun p99 70 -> fail: density 2.  baseline: N=1 worst cal 20 pass,
# N=2 50 -> rerun 38 pass, N=4 one request never came back -> rerun 39 pass: density >= 4.
L = ["DMETA ladder 1,2,4", "DMETA rate 4.0", "DMETA cal_s 30", "DMETA step_s 20", "DMETA cal_runs 3",
     "DMETA slo_factor 2.0", "DMETA nproc 2", "DMETA l1_memtotal_kb 3000000", "DMETA snapshots off",
     "DWARM nexus 0 9000 0 {}", "DINST nexus 0 100 50000 40960", "DWARM baseline 0 15000 0 {}",
     "DINST baseline 0 101 60000 51200", "DWARM baseline 1 400000 1 Runtime failed to start"]
L += run("nexus", 1, "1", 30)
L += run("baseline", 1, "cal1", 10) + run("baseline", 1, "cal2", 20) + run("baseline", 1, "cal3", 15)
L += ["DSLO 40.000 10.000 20.000 15.000", "DDECIDE nexus 1 pass", "DDECIDE baseline 1 pass"]
L += run("nexus", 2, "1", 35) + run("baseline", 2, "1", 50)
L += ["DDECIDE nexus 2 pass", "DDECIDE baseline 2 rerun"] + run("baseline", 2, "2", 38) + ["DDECIDE baseline 2 pass"]
L += run("nexus", 4, "1", 12, codes={3: 502}) + run("baseline", 4, "1", 12, requests=101)
L += ["DDECIDE nexus 4 rerun"] + run("nexus", 4, "2", 70) + ["DDECIDE nexus 4 fail"]
L += ["DDECIDE baseline 4 rerun"] + run("baseline", 4, "2", 39) + ["DDECIDE baseline 4 pass"]
L += ["DMETA l1_loadavg_end 1.0 1.0 1.0", "DEND 800", "DHOST rig_exit 0", "DHOST host_loadavg_start 2.0 2.0 2.0",
      "DHOST host_loadavg_end 3.0 3.0 3.0", "DHOSTLOAD 00:00:30 1.0", "DHOSTLOAD 00:01:00 5.0",
      "DHOSTLOAD 00:01:30 4.0", "DHOST finished 2026-01-01 00:20 UTC"]
r = report.parse(L)
ev = report.evaluate(r, report.PROFILES["quick"])
check(ev["slo"] == 40.0, f"SLO = 2 x the largest calibration p99 (got {ev['slo']})")
check(ev["modes"]["nexus"]["density"] == 2 and ev["modes"]["nexus"]["end"] == "failed N=4", "nexus: density 2, failed N=4")
check(ev["modes"]["baseline"]["density"] == 4 and ev["modes"]["baseline"]["end"].startswith("ladder top"),
      "baseline: density 4 at the ladder top")
s2 = ev["modes"]["baseline"]["steps"][1]
check(s2["pass"] and not s2["tries"][0]["pass"] and s2["tries"][1]["pass"], "a step failing once passes on its rerun")
s4 = ev["modes"]["nexus"]["steps"][2]
check(s4["tries"][0]["p99"] <= 40 and s4["tries"][0]["failed"] == 1 and not s4["tries"][0]["pass"],
      "a failed request fails a step whose p99 meets the SLO")
check(ev["modes"]["baseline"]["steps"][2]["tries"][0]["failed"] == 1, "a request that never came back counts as failed")
rc, page, err = page_of(L)
check(rc == 0, f"report.py page runs ({err.strip()[-300:]})")
check("SLO **40.0 ms**" in page, "the page gives the SLO")
check("nexus **2** (failed N=4)" in page and "baseline **≥ 4**" in page, "densities, the ladder top as a lower bound")
check("Ratio nexus/baseline **0.50**" in page and "lower bound" in page, "the ratio, flagged as resting on a bound")
b1 = rows(page, "baseline", 1)
check(len(b1) == 3 and "cal2 (worst)" in b1[1] and "| 20.0 |" in b1[1], "the calibration runs, the worst marked")
b2 = rows(page, "baseline", 2)
check(len(b2) == 2 and "**no**" in b2[0] and "| yes |" in b2[1], "a rerun is its own row")
n4 = rows(page, "nexus", 4)
check(len(n4) == 2 and all("**no**" in x for x in n4) and "| 1 | **no** |" in n4[0], "failed twice: both rows, the failure count")
check("| 80 |" in rows(page, "nexus", 2)[0], "monitors' PSS total per step (2 x 40 MiB)")
check(rows(page, "nexus", 2)[0].endswith("| 777 |"), "L1's slowness per try")
check("| nexus | 2 | 1 | 2 | 3.0 | 1 | 8.0 | 66 |" in page, "idle VMs' CPU per VM and L1's busy share")
check("idle baseline monitor's CPU went (before baseline N=4 try 2, over the idle window" in page and "`vcpu0:4`" in page,
      "the last idle per-thread sample per mode")
Lo = [x.replace(" 5.0 2 30 1 40 655", " 5 2 30 1 40 655") for x in L]
check("| nexus | 2 | 1 | 2 | ≤ 3.0 | 1 | ≤ 8.0 | 66 |" in page_of(Lo)[1], "an untimed idle window is an upper bound")
check("median 4.0, min 1.0, max 5.0" in page, "the host's load sampled during the run")
check("Incomplete" not in page and "TCG" in page, "a complete run: no incompleteness note, the TCG caveat")
check("warm-up of dens-baseline-1 failed" in page, "a failed warm-up is listed")
check("2.0 2.0 2.0" in page and "bench/vm-density/run.sh quick" in page and "2026-01-01 00:00 UTC" in page,
      "host load, command and date on the page")

# L1 and the page disagree (they must not): said so.
Ld = [x if x != "DDECIDE nexus 2 pass" else "DDECIDE nexus 2 fail" for x in L]
check("L1 decided fail" in page_of(Ld)[1], "a disagreement with L1's own decision is shown")

# ---- the rig stopped during baseline N=2's rerun (exit 126) --------------------------------
cut = L.index("DDECIDE baseline 2 rerun") + 1
Ls = L[:cut] + ["DHOST rig_exit 126"]
r = report.parse(Ls)
ev = report.evaluate(r, report.PROFILES["quick"])
check(ev["modes"]["nexus"]["density"] == 2 and "stopped before N=4" in ev["modes"]["nexus"]["end"],
      "stopped: nexus's unreached step")
check(ev["modes"]["baseline"]["density"] == 1 and ev["modes"]["baseline"]["steps"][1]["pass"] is None,
      "stopped: the baseline's step without its rerun is undecided")
rc, page, _ = page_of(Ls)
check("**Incomplete run**" in page and "126" in page, "an incomplete run says so, with the exit status")
check(any("**not run**" in x for x in rows(page, "nexus", 4)), "an unreached step is shown as not run")
check(any("before the rerun" in x for x in rows(page, "baseline", 2)), "a missing rerun is shown")
check("nexus **≥ 2**" in page and "baseline **≥ 1**" in page, "densities of a stopped climb are lower bounds")

# ---- the baseline never passes N=1 (a failed request in its worst calibration run) ---------
Ln = [x for x in L if not x.startswith(("DLAT baseline 1 cal2", "DRUN baseline 1 cal2"))]
Ln += run("baseline", 1, "cal2", 20, codes={0: 0})[:2] + run("baseline", 1, "2", 20, codes={0: 0})[:2]
ev = report.evaluate(report.parse(Ln), report.PROFILES["quick"])
check(ev["modes"]["baseline"]["density"] == 0, "baseline failing N=1 twice: density 0")
page = page_of(Ln)[1]
check("baseline **none** (never passed N=1" in page and "No ratio" in page, "a mode that never passed N=1 is said so")

# ---- no log at all ------------------------------------------------------------------------
rc, page, _ = page_of(None)
check(rc == 0 and "**Incomplete run**" in page and "SLO: **not set**" in page, "no log: the page says nothing ran")

finish("test-vm-density")
