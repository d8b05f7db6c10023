#!/usr/bin/python3
"""bench/vm-ab/report.py LOG OUT.md STARTED COMMAND PLAN: the page of bench/vm-ab/run.sh.

Reads the raw lines bench/vm-ab/in-l1.sh printed in L1 (latencies, CPU ticks and PSS per cell,
mode and round; the check calls' responses and output digests) and writes a Markdown page:
per cell the nexus/baseline ratios as the median with min and max across rounds, the absolute
values, cold starts, and the process driver's ratios from docs/results/results-full.json next
to them. A cell whose modes disagree on the output is an error, not a number; a cell that did
not run says why."""
import json
import os
import platform
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODES = ("nexus", "baseline")
HZ = 100   # USER_HZ: the unit of the CPU ticks
# Response fields that legitimately differ between the modes (or between calls).
VOLATILE = ("request_id", "function", "remaining_ms", "output")
PROCESS_JSON = os.path.join(ROOT, "docs", "results", "results-full.json")
GOALS = [("warm_p50", "warm p50", 0.40), ("cold", "cold start", 0.70), ("cpu", "node CPU per invocation", 0.40),
         ("pss", "memory (PSS) per warm instance", 0.50)]


def parse(log):
    d = dict(meta={}, cold={}, coldretry={}, plan={}, lat={}, cpu={}, fail={}, mem={}, out={}, obj={}, cell={}, errors=[])
    for line in open(log, errors="replace"):
        line = line.rstrip("\r\n").replace("\r", "")
        p = line.split(" ")
        tag = p[0]
        try:
            if tag == "AB" and len(p) >= 4 and p[1] == "meta":
                d["meta"][p[3]] = " ".join(p[4:])
            elif tag == "ABCOLD":
                d["cold"][(p[1], p[2])] = float(p[3])
            elif tag == "ABCOLDRETRY":
                d["coldretry"][(p[1], p[2])] = (float(p[3]), " ".join(p[4:]))
            elif tag == "ABPLAN":
                d["plan"][(p[1], p[2])] = dict(rounds=int(p[3]), n=int(p[4]), t_nexus=int(p[5]), t_baseline=int(p[6]))
            elif tag == "ABLAT":
                d["lat"][(p[1], p[2], p[3], int(p[4]))] = [int(x) / 1e6 for x in p[5:] if x]
            elif tag == "ABCPU":
                d["cpu"][(p[1], p[2], p[3], int(p[4]))] = tuple(int(x) for x in p[5:9])
            elif tag == "ABFAIL":
                d["fail"].setdefault((p[1], p[2]), []).append(f"{p[3]} round {p[4]}: {p[5]} failed ({' '.join(p[6:])})")
            elif tag == "ABMEM":
                d["mem"][(p[1], p[2], p[3])] = dict(zip(("rss", "pss", "anon", "shmem", "file"), (int(x) for x in p[4:9])))
            elif tag == "ABOUT":
                d["out"][(p[1], p[2], p[3])] = " ".join(p[4:])
            elif tag == "ABOBJ":
                d["obj"][(p[1], p[2], p[3])] = (p[4], int(p[5]))
            elif tag == "ABCELL":
                d["cell"][(p[1], p[2])] = (p[3], " ".join(p[4:]))
            elif tag == "ABERROR":
                d["errors"].append(line[8:])
        except (IndexError, ValueError):
            d["errors"].append(f"unparsable line: {line[:120]}")
    return d


def pct(xs, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(xs)
    k = max(1, min(len(s), int(-(-q * len(s) // 100))))
    return s[k - 1]


def spread(vals):
    """"median [min–max]" of per-round ratios."""
    if not vals:
        return "–"
    if len(vals) == 1:
        return f"{vals[0]:.2f} (1 round)"
    return f"**{statistics.median(vals):.2f}** [{min(vals):.2f}–{max(vals):.2f}]"


def normalized(resp):
    try:
        o = json.loads(resp)
    except ValueError:
        return resp
    if isinstance(o, dict):
        for k in VOLATILE:
            o.pop(k, None)
    return o


def outputs_agree(d, fn, size):
    """None if the check calls agree, else why not."""
    a, b = (d["out"].get((fn, size, m)) for m in MODES)
    if a is None or b is None:
        return "a check call's response is missing"
    if normalized(a) != normalized(b):
        return f"responses differ (nexus {a[:120]!r}, baseline {b[:120]!r})"
    oa, ob = (d["obj"].get((fn, size, m)) for m in MODES)
    if fn != "hello" and (oa is None or ob is None):
        return "an output object is missing"
    if oa != ob:
        return f"output objects differ ({oa} vs {ob})"
    return None


def cell_stats(d, fn, size):
    s = {m: dict(lat=[], rounds={}) for m in MODES}
    for (f, z, m, r), lat in d["lat"].items():
        if (f, z) == (fn, size):
            s[m]["lat"] += lat
            s[m]["rounds"].setdefault(r, {})["p50"] = pct(lat, 50) if lat else None
    for (f, z, m, r), (calls, node, mon, relay) in d["cpu"].items():
        if (f, z) == (fn, size):
            rr = s[m]["rounds"].setdefault(r, {})
            rr.update(calls=calls, node=node, mon=mon, relay=relay,
                      cpu=(node + mon) * 1000 / HZ / calls if calls else None)
    for m in MODES:
        x = s[m]
        x["calls"] = sum(r.get("calls", 0) for r in x["rounds"].values())
        for k in ("node", "mon", "relay"):
            x[k] = sum(r.get(k, 0) for r in x["rounds"].values()) * 1000 / HZ / x["calls"] if x["calls"] else None
        x["cpu"] = x["node"] + x["mon"] if x["calls"] else None
        x["p50"] = pct(x["lat"], 50) if x["lat"] else None
        x["p99"] = pct(x["lat"], 99) if x["lat"] else None
        x["mem"] = d["mem"].get((fn, size, m))
    rounds = sorted(set(s["nexus"]["rounds"]) & set(s["baseline"]["rounds"]))
    ratio = {}
    for key in ("p50", "cpu"):
        ratio[key] = [s["nexus"]["rounds"][r][key] / s["baseline"]["rounds"][r][key] for r in rounds
                      if s["nexus"]["rounds"][r].get(key) is not None and s["baseline"]["rounds"][r].get(key)]
    mn, mb = s["nexus"]["mem"], s["baseline"]["mem"]
    ratio["pss"] = mn["pss"] / mb["pss"] if mn and mb and mb["pss"] else None
    ratio["p99"] = s["nexus"]["p99"] / s["baseline"]["p99"] if s["nexus"]["p99"] and s["baseline"]["p99"] else None
    return s, ratio


def process_ratios():
    """(function, size, metric) -> nexus/baseline ratio of the process driver, if its JSON is there."""
    try:
        res = json.load(open(PROCESS_JSON))
    except (OSError, ValueError):
        return {}, None
    out = {(r["function"], r["size"], r["metric"]): r.get("ratio") for r in res.get("results", [])}
    return out, res.get("meta", {}).get("started")


def f2(x, nd=2):
    return "–" if x is None else f"{x:.{nd}f}"


def main():
    log, out, started, command, planfile = sys.argv[1:6]
    d = parse(log)
    words = [x for x in command.split() if "=" not in x]
    profile = words[1] if len(words) > 1 else "?"
    plan = [tuple(line.split()[:2]) for line in open(planfile) if line.strip() and not line.startswith("#")]
    proc, proc_when = process_ratios()
    meta = d["meta"]
    w = meta.get("warm", "").split()
    warm_rule = (f"n = {w[1]} s per mode / {w[0]} rounds / the slower mode's call, clamped to [{w[2]}, {w[3]}], "
                 f"cut further so that the run ends within {w[4]} s in L1" if len(w) == 5 else
                 "n = WARM_S per mode / ROUNDS / the slower mode's call, clamped, cut to the time budget "
                 "(bench/vm-ab/README.md)")
    rig_exit = meta.get("rig_exit", "?")
    L = ["# A/B on the `vm` driver: nexus vs baseline in the nested rig, function x size", "",
         f"Generated by `{command}` (bench/vm-ab/README.md), started {started}, finished "
         f"{meta.get('finished', '?')}; profile **{profile}**. The process-driver results are "
         "[docs/results.md](results.md); their ratios are repeated here in the *process* columns"
         + (f" (run of {proc_when})." if proc_when else " (not found: docs/results/results-full.json)."), "",
         f"- load average: host (2 cores, shared with other engineers' builds and rigs) "
         f"{meta.get('host_loadavg_start', '?')} at the start, {meta.get('host_loadavg_end', '?')} at the end; "
         f"L1 ({meta.get('nproc', '?')} vCPUs) {meta.get('l1_loadavg', '?')} at the end",
         f"- rig exit status {rig_exit} (0 = ran to the end); {meta.get('l1_elapsed_s', '?')} s in L1; "
         f"S3 server {meta.get('s3', '?')}; guests {meta.get('guest_memory_mb', '?')} MiB each",
         "",
         "**Caveat: TCG.** This machine has no KVM. The microVMs run in L2 under L1's KVM on *emulated* SVM, "
         "inside QEMU TCG (rig/run-l1). Every VM exit costs orders of magnitude more than on hardware and guest "
         "code runs at emulation speed (a call took 3-60x as long as on the process driver: 55x for hello, 3x for a 1 MiB image-rotate in nexus mode), so absolute "
         "numbers mean little; the ratios say which stack costs more exits and more guest work. Calls per cell "
         "are scaled to the cost of a call (column *calls*): where a mode got fewer than 100 calls, its *p99* "
         "is really the slowest call, and is labelled so.", ""]
    if d["errors"]:
        L += ["**Errors during the run:** " + "; ".join(d["errors"]), ""]

    # ---- per cell: status, statistics ------------------------------------------------------
    rows, stats = [], {}
    # Rows by function (in plan order) then size, whatever order the cells ran in.
    fn_order = {fn: i for i, (fn, _) in reversed(list(enumerate(plan)))}
    size_order = {z: i for i, z in enumerate(("none", "1KiB", "100KiB", "1MiB", "10MiB"))}
    for fn, size in sorted(plan, key=lambda c: (fn_order[c[0]], size_order.get(c[1], 9))):
        st, why = d["cell"].get((fn, size), (None, None))
        if st is None:
            st, why = "missing", f"not reached: the rig stopped first (exit {rig_exit})"
        if st == "ok":
            bad = outputs_agree(d, fn, size)
            if bad:
                st, why = "error", "outputs differ between the modes: " + bad
        if st == "ok":
            stats[(fn, size)] = cell_stats(d, fn, size)
            if d["fail"].get((fn, size)):
                why = "failed calls: " + "; ".join(d["fail"][(fn, size)])
        rows.append((fn, size, st, why.replace("|", "\\|") if why else why))   # table-safe
    if profile == "full":
        funcs = sorted({fn for fn, _ in plan})
        present = sorted(x for x in os.listdir(os.path.join(ROOT, "functions"))
                         if os.path.isdir(os.path.join(ROOT, "functions", x)))
        if "pyaes" in funcs:
            for size in ("1MiB", "10MiB"):
                rows.append(("pyaes", size, "not run", "capped at 100 KiB as in `nexus bench` (PYAES_MAX: pure "
                             "Python, ~10 µs per byte on the host, so 1 MiB takes ~10 s per call there and "
                             "minutes under TCG)"))
        for fn in present:
            if fn not in funcs:
                why = ("a C function on libnexus: it has no baseline counterpart (no HTTP server, no TCP S3 "
                       "client; docs/baseline.md), so there is no A/B; `nexus bench` leaves it out too"
                       if fn == "c-linecount" else "not in `nexus bench`'s functions either")
                rows.append((fn, "all", "not run", why))

    L += ["## Ratios nexus/baseline, every cell", "",
          "vm: the median of the per-round ratios, with [min–max] across rounds (each round runs both modes "
          "back to back); p99 over all calls of the cell (*max* where a mode had fewer than 100: the slowest call, not a percentile); PSS is one sample per mode. process: `nexus bench` full on the process driver "
          "(docs/results.md). hello reads no input: its one cell is sizeless (`none`; here the event carries "
          "a 1 KiB name). Lower is better.", "",
          "| function | size | calls per mode (rounds x n) | warm p50 vm | process | warm p99 vm | process "
          "| node CPU/inv vm | process | PSS vm | process | status |",
          "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for fn, size, st, why in rows:
        pr = lambda m: f2(proc.get((fn, size, m)))   # noqa: E731
        if (fn, size) in stats:
            s, ratio = stats[(fn, size)]
            pl = d["plan"].get((fn, size), {})
            calls = f"{pl.get('rounds', '?')} x {pl.get('n', '?')}"
            few = min(len(s["nexus"]["lat"]), len(s["baseline"]["lat"])) < 100
            L.append(f"| {fn} | {size} | {calls} | {spread(ratio['p50'])} | {pr('warm_p50_ms')} | "
                     f"{f2(ratio['p99'])}{' (max)' if few and ratio['p99'] else ''} | {pr('warm_p99_ms')} | "
                     f"{spread(ratio['cpu'])} | {pr('cpu_ms_per_inv')} | {f2(ratio['pss'])} | {pr('pss_mib')} | "
                     f"{'ok' if not why else 'ok, but ' + why} |")
        else:
            L.append(f"| {fn} | {size} | – | – | {pr('warm_p50_ms')} | – | {pr('warm_p99_ms')} | – | "
                     f"{pr('cpu_ms_per_inv')} | – | "
                     f"{pr('pss_mib')} | **{st}**: {why} |")
    L.append("")

    # ---- goals, as on the process page ----------------------------------------------------
    agg = {"warm_p50": [], "cpu": [], "pss": [], "cold": []}
    for (fn, size), (s, ratio) in stats.items():
        if ratio["p50"]:
            agg["warm_p50"].append(statistics.median(ratio["p50"]))
        if ratio["cpu"]:
            agg["cpu"].append(statistics.median(ratio["cpu"]))
        if ratio["pss"] is not None:
            agg["pss"].append(ratio["pss"])
    colds = {}
    for fn in sorted({fn for fn, _ in plan}):
        a, b = d["cold"].get((fn, "nexus")), d["cold"].get((fn, "baseline"))
        colds[fn] = (a, b)
        if a and b:
            agg["cold"].append(a / b)
    L += ["## Goals (the process page's targets, over the vm cells above)", "",
          "| goal | target | median | min | max | met? | cells |", "|---|---|---:|---:|---:|---|---:|"]
    for key, label, target in GOALS:
        v = agg[key]
        if v:
            L.append(f"| {label} | <= {target} | {statistics.median(v):.2f} | {min(v):.2f} | {max(v):.2f} | "
                     f"{'yes' if statistics.median(v) <= target else '**no**'} | {len(v)} |")
        else:
            L.append(f"| {label} | <= {target} | – | – | – | no data | 0 |")
    L.append("")

    L += ["## Cold start (first call of a freshly deployed function, fresh boot, one sample per mode)", "",
          "| function | input | nexus (ms) | baseline (ms) | ratio vm | ratio process | note |",
          "|---|---|---:|---:|---:|---:|---|"]
    for fn, (a, b) in colds.items():
        size = "none" if fn == "hello" else "1KiB"
        note = "; ".join(f"{m}: the first boot failed after {ms / 1000:.0f} s ({why[:140]}); this is the second"
                         for m in MODES for ms, why in [d["coldretry"].get((fn, m), (None, None))] if ms)
        for m, v in zip(MODES, (a, b)):
            if v is None:
                note += ("; " if note else "") + f"{m}: no cold start recorded (the first call failed or was not reached: see the cells)"
        L.append(f"| {fn} | {size} | {f2(a, 0)} | {f2(b, 0)} | {f2(a / b if a and b else None)} | "
                 f"{f2(proc.get((fn, size, 'cold_ms')))} | {note} |")
    L.append("")

    # ---- absolute values ------------------------------------------------------------------
    L += ["## Absolute values (ms, MiB), nexus / baseline", "",
          "CPU = the instance's nexus-vmm (all guest work and its device emulation) + nexusd without nx-relay; "
          "the relay (baseline's S3 path) apart. p99 is the nearest-rank percentile over all calls of the cell; "
          "with fewer than 100 calls that is the slowest one (marked *max*).", "",
          "| function | size | calls | warm p50 | warm p99 | CPU/inv | of which monitor | of which nexusd "
          "| relay/inv | PSS | PSS shmem (guest RAM) |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (fn, size), (s, ratio) in stats.items():
        n, b = s["nexus"], s["baseline"]

        def both(k, nd=1, x=n, y=b):
            return f"{f2(x[k], nd)} / {f2(y[k], nd)}"

        def mem(k, x=n, y=b):
            return " / ".join(f2(z["mem"][k] / 1024, 1) if z["mem"] else "–" for z in (x, y))
        p99 = both("p99") + (" (max)" if min(len(n["lat"]), len(b["lat"])) < 100 else "")
        L.append(f"| {fn} | {size} | {len(n['lat'])} / {len(b['lat'])} | {both('p50')} | {p99} | {both('cpu')} | "
                 f"{both('mon')} | {both('node')} | {both('relay')} | {mem('pss')} | {mem('shmem')} |")
    L.append("")

    L += ["## Method", "",
          "- **cells**: those of `nexus bench` (bench/harness/main.py `combos()`, imported by "
          "bench/vm-ab/make_inputs.py): hello sizeless; image-rotate and wordcount at 1 KiB, 100 KiB, 1 MiB, "
          "10 MiB; pyaes at 1 KiB and 100 KiB (PYAES_MAX). The input objects are `inputs.make()` with the "
          "harness's seed, byte for byte those of the process run. The 10 MiB cells run last so that a "
          "time budget cuts them first.",
          "- **one rig boot, one nexusd** (vm driver, snapshots off: both cold starts are fresh boots; nexus "
          "mode's snapshot restore is in [results-coldstart.md](results-coldstart.md)); same guest kernel, "
          "root image and guest memory for both modes, the same S3 server on L1's loopback. Baseline = "
          "virtio-net on a tap on nexusd's node bridge, the guest's own HTTP server, real boto3 through the "
          "S3 relay (docs/baseline.md). Both modes of a function are deployed side by side while its cells run.",
          "- **check**: per cell one call per mode first (the first one of a function is its cold start); both "
          "must succeed, and their responses (without request id, function name, remaining time and output "
          "key) and output objects (sha256) must be equal, else the cell is an error.",
          "- **warm**: ROUNDS rounds; in each, both modes back to back (the order flips every round), n calls "
          "each over one kept-alive connection (`nexus-bench-load closed`): " + warm_rule + ". A mode's call "
          "is timed by its check call, or by the median of three load-generator calls when the check took "
          "under 5 s (the CLI's own cost).",
          "- **node CPU per invocation**: utime+stime (USER_HZ ticks, 10 ms) of the instance's `nexus-vmm` "
          "and of nexusd's threads except `nx-relay`, per round, divided by that round's calls. The S3 "
          "server and the load generator are excluded (as on the process driver).",
          "- **PSS**: `/proc/<nexus-vmm>/smaps_rollup` after the cell's rounds. Guest RAM is the monitor's "
          "memfd (shmem), so PSS counts the guest pages touched so far; nothing is shared between VMs.",
          f"- page written on {platform.node()} ({os.cpu_count()} cores), host load average then "
          f"{os.getloadavg()[0]:.1f}.", ""]
    notes = os.path.join(HERE, "notes.md")   # hand-written reading
    if os.path.exists(notes):
        L += [open(notes).read().rstrip(), ""]
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        f.write("\n".join(L))
    print(f"vm-ab: wrote {out}")


if __name__ == "__main__":
    main()
