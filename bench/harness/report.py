"""Turns the harness's measurements into docs/results: results.csv (one row per
function, size and metric), latency CSVs, gnuplot PNGs, results.json (--json)
and the Markdown page OUT.md."""
import csv
import json
import os
import platform
import statistics
import subprocess

import plots

GOALS = [  # metric, label, comparison, target
    ("warm_p50_ms", "warm p50 (nexus/baseline)", "<=", 0.40),
    ("cold_ms", "cold start (nexus/baseline)", "<=", 0.70),
    ("cpu_ms_per_inv", "node CPU per invocation (nexus/baseline)", "<=", 0.40),
    ("pss_mib", "memory (PSS) per warm instance (nexus/baseline)", "<=", 0.50),
]
NOTES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results-notes.md")


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def _ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def rows_of(results):
    rows = []

    def add(func, size, metric, unit, nx, bl, floor=None, n=None, core=None):
        rows.append({"function": func, "size": size, "metric": metric, "unit": unit, "nexus": nx, "baseline": bl,
                     "ratio": _ratio(nx, bl), "floor": floor, "nexus_over_floor": _ratio(nx, floor),
                     "core_floor": core, "nexus_over_core_floor": _ratio(nx, core), "samples": n})

    for key, d in results["warm"].items():
        func, size = key.split("/")
        core = results["floor"].get(key)          # floor.py: no ingress, in-memory S3
        fl = d.get("floor") if d.get("floor", {}).get("lat") else None   # the host driver, same run
        nx, bl = d["nexus"], d["baseline"]
        n = f"{len(nx['lat'])}/{len(bl['lat'])}" + (f"/{len(fl['lat'])}" if fl else "")
        if nx.get("errors") or bl.get("errors") or (fl and fl.get("errors")):
            n += f" (failed {nx.get('errors', 0)}/{bl.get('errors', 0)}" + (f"/{fl['errors']}" if fl else "") + ")"
        for p in (50, 99):
            add(func, size, f"warm_p{p}_ms", "ms", pct(nx["lat"], p), pct(bl["lat"], p),
                fl and pct(fl["lat"], p), n, core and core[f"p{p}"])
        cpu = {m: {k: v / 1e6 / d[m]["count"] for k, v in d[m]["cpu"].items()} for m in ("nexus", "baseline")}
        add(func, size, "cpu_ms_per_inv", "ms", cpu["nexus"]["nexusd"] + cpu["nexus"]["sandboxes"],
            cpu["baseline"]["nexusd"] + cpu["baseline"]["sandboxes"], None, n)
        add(func, size, "cpu_nexusd_ms_per_inv", "ms", cpu["nexus"]["nexusd"], cpu["baseline"]["nexusd"], None, n)
        add(func, size, "cpu_sandbox_ms_per_inv", "ms", cpu["nexus"]["sandboxes"], cpu["baseline"]["sandboxes"],
            None, n)
        add(func, size, "cpu_relay_ms_per_inv", "ms", cpu["nexus"]["relay"], cpu["baseline"]["relay"], None, n)
        add(func, size, "cpu_s3_server_ms_per_inv", "ms", cpu["nexus"]["s3"], cpu["baseline"]["s3"], None, n)
        add(func, size, "cpu_loadgen_ms_per_inv", "ms", d["nexus"]["loadgen"] / 1e6 / d["nexus"]["count"],
            d["baseline"]["loadgen"] / 1e6 / d["baseline"]["count"], None, n)
        mem = {m: d[m].get("mem") for m in ("nexus", "baseline")}
        if mem["nexus"] and mem["baseline"]:
            for k in ("pss", "private", "shared"):
                add(func, size, f"{k}_mib", "MiB", mem["nexus"][k] / 2**20, mem["baseline"][k] / 2**20)
    for func, d in results["cold"].items():
        add(func, "1KiB" if func != "hello" else "none", "cold_ms", "ms", statistics.median(d["nexus"]),
            statistics.median(d["baseline"]), None, f"{len(d['nexus'])}/{len(d['baseline'])}")
    dens = results.get("density")
    if dens:
        add("hello", "trace", "density_instances", "instances", dens["density"]["nexus"], dens["density"]["baseline"])
    return rows


def _fmt(v, digits=3):
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if v != v:
        return "nan"
    return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"


def goal_lines(rows, results):
    out = ["| goal | target | median | min | max | met? | over |", "|---|---|---|---|---|---|---|"]
    verdicts = []
    for metric, label, op, target in GOALS:
        rs = [r["ratio"] for r in rows if r["metric"] == metric and r["ratio"] is not None]
        if not rs:
            continue
        med = statistics.median(rs)
        met = med <= target
        verdicts.append((label, met))
        out.append(f"| {label} | {op} {target} | {_fmt(med)} | {_fmt(min(rs))} | {_fmt(max(rs))} | "
                   f"{'yes' if met else '**no**'} | {len(rs)} function/size pairs |")
    dens = results.get("density")
    if dens and dens["density"]["baseline"]:
        r = dens["density"]["nexus"] / dens["density"]["baseline"]
        top = " (nexus still passing at the top of the ladder: a lower bound)" if dens["ladder_top_reached"]["nexus"] \
            else ""
        out.append(f"| density (nexus/baseline) | >= 1.6 | {_fmt(r)} | | | {'yes' if r >= 1.6 else '**no**'} | "
                   f"{dens['density']['nexus']} vs {dens['density']['baseline']} instances{top} |")
        verdicts.append(("density", r >= 1.6))
    fl = [r["nexus_over_floor"] for r in rows if r["metric"] == "warm_p50_ms" and r["nexus_over_floor"]]
    if fl:
        med = statistics.median(fl)
        out.append(f"| warm p50 (nexus/floor) | <= 1.2 | {_fmt(med)} | {_fmt(min(fl))} | {_fmt(max(fl))} | "
                   f"{'yes' if med <= 1.2 else '**no**'} | {len(fl)} function/size pairs |")
        verdicts.append(("warm vs floor", med <= 1.2))
    core = [r["nexus_over_core_floor"] for r in rows if r["metric"] == "warm_p50_ms" and r["nexus_over_core_floor"]]
    if core:   # a reference, not a goal: it leaves out the ingress and the storage server
        out.append(f"| warm p50 (nexus/core floor) | (reference) | {_fmt(statistics.median(core))} | "
                   f"{_fmt(min(core))} | {_fmt(max(core))} | | {len(core)} function/size pairs |")
    return out, verdicts


S3_DESC = {
    "s3peer": "`nexus-s3peer` (bench/s3peer: C, libmicrohttpd, objects in memory, SigV4-checked)",
    "s3rver": "the local s3rver (npm @20minutes/s3rver, ~1k requests/s)",
}


def machine():
    info = {"kernel": platform.release(), "python": platform.python_version()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        info["cpus"] = os.cpu_count()
        info["memory_gib"] = round(int(open("/proc/meminfo").readline().split()[1]) / 2**20, 1)
        info["load_before"] = open("/proc/loadavg").read().split()[:3]
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True).stdout.strip()
    except OSError:
        pass
    return info


def write_all(results, out, json_path=None):
    rows = rows_of(results)
    if "machine" not in results:   # --report-only keeps the measured run's
        results["machine"] = machine()
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    pngs = plots.make_all(results, rows, out)
    doc = {"meta": {k: results.get(k) for k in ("profile", "command", "started", "finished", "seed", "machine",
                                                  "s3", "loadavg")},
           "results": rows, "density": results.get("density"), "spine": results.get("spine"),
           "floor": results.get("floor")}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(doc, f, indent=1)
    with open(out.rstrip("/") + ".md", "w") as f:
        f.write(page(results, rows, pngs, os.path.basename(out.rstrip("/"))))
    return rows


def page(results, rows, pngs, reldir):
    m = results["machine"]
    L = ["# Nexus vs baseline: results", "",
         "Generated by `" + results["command"] + "` (bench/harness/, see bench/README.md); "
         "regenerate with `make bench` or `build/bin/nexus bench --out docs/results` "
         "(`--quick` for a few minutes).", "",
         f"- date: {results['started']} – {results['finished']} (UTC), profile **{results['profile']}**, "
         f"commit {m.get('commit', '?')}",
         f"- machine: {m.get('cpu', '?')}, {m.get('cpus')} CPUs, {m.get('memory_gib')} GiB, Linux {m['kernel']}; "
         f"load average at the end {' '.join(m.get('load_before', []))} (the machine is shared with other builds: "
         "expect noise; nexus and baseline rounds are interleaved so it hits both)",
         "- driver: `process` for both modes; every function deployed with 512 MB, max-instances 1",
         "- the `vm` driver (nexus vs baseline in microVMs, nested rig, TCG): [results-vm-ab.md](results-vm-ab.md) "
         "(`bench/vm-ab/run.sh`); its density: [results-vm-density.md](results-vm-density.md) "
         "(`bench/vm-density/run.sh`)",
         "- storage server: " + S3_DESC.get(results.get("s3", "s3rver"), results.get("s3", "?")) +
         " (its CPU is reported apart, never in the node figure)"]
    la = results.get("loadavg")
    if la:
        L += [f"- load average (1 min) during the run, sampled every {la['every_s']} s: median {la['median']:.2f}, "
              f"min {la['min']:.2f}, max {la['max']:.2f} on {m.get('cpus')} CPUs ({la['n']} samples)"]
    L += [""]
    goals, verdicts = goal_lines(rows, results)
    L += ["## Goals (ratios nexus/baseline; lower is better except density)", ""] + goals + [""]
    short = [v[0] for v in verdicts if not v[1]]
    if short:
        L += [f"**Short of the goal:** {', '.join(short)}. Why: see *Analysis* below.", ""]
    L += ["## Every function and size", "",
          "Ratios are nexus/baseline. The **floor** is the same handler as a plain host process on the "
          "same nexusd channel with no sandbox (nexusd's `host` driver), invoked through the same HTTP "
          "ingress and storage server, interleaved with the two modes. The **core floor** is the handler "
          "under guest-realhost: nexusd's channel code with an in-memory S3 and no HTTP at all (a "
          "reference for what ingress and storage cost). `samples` = invocations nexus/baseline/floor.", "",
          "| function | size | metric | nexus | baseline | ratio | floor | nexus/floor | core floor | "
          "nexus/core floor | samples |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["metric"].startswith("cpu_") and r["metric"] != "cpu_ms_per_inv":
            continue
        L.append(f"| {r['function']} | {r['size']} | {r['metric']} | {_fmt(r['nexus'])} | {_fmt(r['baseline'])} | "
                 f"{_fmt(r['ratio'])} | {_fmt(r['floor'])} | {_fmt(r['nexus_over_floor'])} | "
                 f"{_fmt(r['core_floor'])} | {_fmt(r['nexus_over_core_floor'])} | {r['samples'] or ''} |")
    errs = [(k, m, d[m]["errors"], d[m]["error_text"]) for k, d in results["warm"].items()
            for m in ("nexus", "baseline") if d[m].get("errors")]
    if errs:
        L += ["", "Failed requests (left out of the latencies, counted in the CPU denominator):", ""]
        L += [f"- {k} {m}: {n} failed; first: `{t.replace('`', '')[:300]}`" for k, m, n, t in errs]
    L += ["", "### CPU per invocation, by account (ms)", "",
          "node = nexusd (all threads but the relay) + the instance cgroups (cpuacct). "
          "The baseline's S3 relay thread (nx-relay), the S3 server and the load generator are not in the node "
          "figure and are shown apart.", "",
          "| function | size | mode | nexusd | sandboxes | node | relay | S3 server | load generator |",
          "|---|---|---|---|---|---|---|---|---|"]
    by = {(r["function"], r["size"], r["metric"]): r for r in rows}
    for key in results["warm"]:
        func, size = key.split("/")
        for mode in ("nexus", "baseline"):
            g = lambda met: by[(func, size, met)][mode]  # noqa: E731
            L.append(f"| {func} | {size} | {mode} | {_fmt(g('cpu_nexusd_ms_per_inv'))} | "
                     f"{_fmt(g('cpu_sandbox_ms_per_inv'))} | {_fmt(g('cpu_ms_per_inv'))} | "
                     f"{_fmt(g('cpu_relay_ms_per_inv'))} | {_fmt(g('cpu_s3_server_ms_per_inv'))} | "
                     f"{_fmt(g('cpu_loadgen_ms_per_inv'))} |")
    L += ["", "Memory: PSS of every process of the instance (its memory cgroup's `cgroup.procs`, "
          "`/proc/<pid>/smaps_rollup`) after its warm rounds; `private` = Private_Clean + Private_Dirty, "
          "`shared` = PSS − private (its share of pages mapped by others, e.g. libpython of the other "
          "instances: 8 instances, one per function and mode, are alive while it is measured).", ""]
    dens = results.get("density")
    if dens:
        L += ["## Density", "",
              f"Rule: N instances = N `hello` functions with max-instances 1, each warmed once; an open-loop trace "
              f"drives them at {dens['rate']:.0f} requests/s per instance on average for {dens['seconds']:.0f} s "
              f"(seed {dens['seed']}). SLO = {dens['slo_factor']:.0f} x the baseline's p99 at N = 1 under the same "
              f"trace (the largest of {len(dens['steps']['baseline'][0].get('calibration_p99', [0]))} runs of that "
              f"step: ~1-2 % of requests in both modes stall ~10 ms on this VM, a scheduler tick) "
              f"= **{dens['slo_ms']:.2f} ms**. A step passes when the p99 of all its requests meets the SLO "
              "and none failed; a step that fails is run once more at once and passes if that run does (both "
              "modes alike; one scheduler blip on a shared 2-CPU VM must not end a climb); density = the largest "
              "passing N of the ladder (both modes climb it in lockstep).",
              "",
              f"Trace: per-function mean rate r·X/mean(X), X ~ LogNormal(0, {dens['sigma']}) (heavy-tailed, as the "
              f"per-function rates of the Azure Functions 2019 traces); inter-arrival times ~ Gamma(k = {dens['k']}, "
              f"mean 1/r_i), i.e. coefficient of variation {1 / dens['k'] ** 0.5:.0f} (bursty; Poisson would be 1); "
              "random phase per function. Generator: bench/harness/trace.py.", "",
              f"**Density: nexus {dens['density']['nexus']}, baseline {dens['density']['baseline']} instances.**", "",
              "| N | mode | requests | rate/s | p50 ms | p99 ms | failed | pass |", "|---|---|---|---|---|---|---|---|"]
        for mode in ("nexus", "baseline"):
            for s in dens["steps"][mode]:
                L.append(f"| {s['n']} | {mode} | {s['requests']} | {s['rate']:.0f} | {_fmt(s['p50'])} | "
                         f"{_fmt(s['p99'])} | {s['failed']} | {'yes' if s.get('pass') else 'no'} |")
        L.append("")
    sp = results.get("spine")
    if sp:
        L += ["## Spine benchmarks (issue 2)", "",
              "Medians over repetitions (each a median of many round trips), with min and max; `bench/spine.py`.",
              "", "| measurement | median | min | max | reps |", "|---|---|---|---|---|"]
        for key, label in (("invoke_noop_us", "warm no-op invocation through nexusd, µs"),
                           ("get_1mib_us", "get_object 1 MiB + read(), µs")):
            for mode, who in (("nexus", "nexus mode (shim, channel)"), ("baseline", "baseline (real boto3, TCP)")):
                s = sp[key][mode]
                L.append(f"| {label}: {who} | {s['median']:.0f} | {s['min']:.0f} | {s['max']:.0f} | {s['reps']} |")
        for key, label in (("channel_null_c_us", "channel null round trip, C (libnexus), µs"),
                           ("channel_null_python_us", "channel null round trip, Python (ctypes), µs")):
            s = sp.get(key)
            if s:
                L.append(f"| {label} | {s['median']:.1f} | {s['min']:.1f} | {s['max']:.1f} | {s['reps']} |")
        L += ["", "Aims (issue 2): channel null round trip <= 20 µs, warm no-op invocation <= 200 µs p50.", ""]
    L += ["## Plots", ""]
    for title, png in pngs:
        L.append(f"![{title}]({reldir}/{png})")
        L.append("")
    if results.get("profiles"):
        L += ["## Profiles", ""]
        for p in results["profiles"]:
            L.append(f"- {p['title']}: [{p['file']}]({reldir}/{p['file']})")
        L.append("")
    L += ["## Files", "", f"- `{reldir}/results.csv`: every row above; `{reldir}/results.json`: the same "
          "plus density steps, floor and spine (also written by `--json FILE`)",
          f"- `{reldir}/latency-*.csv`: latency percentiles per function, size and mode (the CDF data)", ""]
    if os.path.exists(NOTES):
        L += [open(NOTES).read()]
    return "\n".join(L) + "\n"
