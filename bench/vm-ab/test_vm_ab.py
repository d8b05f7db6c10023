#!/usr/bin/python3
"""make test-vm-ab: the host side of bench/vm-ab without the rig (the rig run itself takes
20-60 min of TCG and is not a unit test). Checks, on a made-up raw log:
- the cells are `nexus bench`'s (pyaes capped, hello sizeless, 10 MiB last);
- per-round ratios: median with min and max across rounds, CPU from ticks;
- a cell whose modes disagree (response or output object) is an error, not a number;
- a cell the rig never reached, a skipped cell, a failed cell: each reported with its reason;
- a retried cold start is said so.
Writes $NEXUS_TEST_RESULTS/test-vm-ab.counts."""
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from checks import check, finish  # noqa: E402
import make_inputs  # noqa: E402



full = make_inputs.cells("full")
names = [(f, s) for f, s, _ in full]
check(("hello", "none") in names and not any(f == "hello" and s != "none" for f, s in names), "hello is one sizeless cell")
check(("pyaes", "100KiB") in names and ("pyaes", "1MiB") not in names, "pyaes stops at PYAES_MAX (100 KiB)")
check(all(s == "10MiB" for _, s in names[-2:]) and all(s != "10MiB" for _, s in names[:-2]), "the 10 MiB cells run last")
check(len(names) == 11, f"11 cells in the full plan (got {len(names)})")
check([c[:2] for c in make_inputs.cells("quick")] == [("hello", "none"), ("wordcount", "1KiB")], "quick = the old subset")

# A made-up run: wordcount 1KiB fine over 3 rounds; 100KiB outputs differ; 1MiB failed its
# check; 10MiB skipped by the budget; hello not reached (the rig stopped).
H = "a" * 64
lines = ["AB meta - s3 nexus-s3peer", "AB meta - warm 3 150 1 100 3300", "AB meta - rig_exit 124",
         "ABCOLDRETRY wordcount nexus 31000 Runtime failed to start: not ready within 30 s",
         "ABCOLD wordcount nexus 9000", "ABCOLD wordcount baseline 18000",
         'ABOUT wordcount 1KiB nexus {"input": "k", "output": "out/n", "words": 5, "request_id": "1"}',
         'ABOUT wordcount 1KiB baseline {"input": "k", "output": "out/b", "words": 5, "request_id": "2"}',
         f"ABOBJ wordcount 1KiB nexus {H} 10", f"ABOBJ wordcount 1KiB baseline {H} 10",
         "ABPLAN wordcount 1KiB 3 2 100 200"]
# p50 per round (nearest rank of 2 = the lower): nexus 10, 20, 30 ms; baseline 40, 40, 40 ms
for r, (n, b) in enumerate([(10, 40), (20, 40), (30, 40)], 1):
    lines += [f"ABLAT wordcount 1KiB nexus {r} {n * 1000000} {(n + 1) * 1000000}",
              f"ABLAT wordcount 1KiB baseline {r} {b * 1000000} {(b + 1) * 1000000}",
              f"ABCPU wordcount 1KiB nexus {r} 2 1 {r} 0", f"ABCPU wordcount 1KiB baseline {r} 2 1 3 2"]
lines += ["ABMEM wordcount 1KiB nexus 100 40960 1 2 3", "ABMEM wordcount 1KiB baseline 100 81920 1 2 3",
          "ABCELL wordcount 1KiB ok",
          'ABOUT wordcount 100KiB nexus {"words": 5}', 'ABOUT wordcount 100KiB baseline {"words": 5}',
          f"ABOBJ wordcount 100KiB nexus {H} 10", f"ABOBJ wordcount 100KiB baseline {'b' * 64} 10",
          "ABCELL wordcount 100KiB ok",
          "ABCELL wordcount 1MiB error nexus call failed (exit 1: MemoryError)",
          "ABCELL wordcount 10MiB skipped time budget: 3 rounds do not fit"]
with tempfile.TemporaryDirectory() as tmp:
    log, plan, out = (os.path.join(tmp, x) for x in ("rig.log", "plan.txt", "page.md"))
    open(log, "w").write("\n".join(lines) + "\n")
    open(plan, "w").write("hello none -\nwordcount 1KiB x\nwordcount 100KiB x\nwordcount 1MiB x\nwordcount 10MiB x\n")
    p = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "report.py"), log, out, "2026-01-01 00:00 UTC",
                        "bench/vm-ab/run.sh full 3", plan], capture_output=True, text=True)
    check(p.returncode == 0, f"report.py runs ({p.stderr.strip()[-300:]})")
    page = open(out).read() if os.path.exists(out) else ""
    row = lambda fn, size: next((x for x in page.splitlines() if x.startswith(f"| {fn} | {size} |")), "")  # noqa: E731
    # ratios per round: 10/40, 20/40, 30/40 -> median 0.50, min 0.25, max 0.75
    check("**0.50** [0.25–0.75]" in row("wordcount", "1KiB"), "warm p50 ratio: median [min–max] across rounds")
    # CPU per round: nexus (1 + r) ticks / 2 calls, baseline 4 / 2 -> 0.50, 0.75, 1.00
    check("**0.75** [0.50–1.00]" in row("wordcount", "1KiB"), "CPU ratio from the ticks, per round")
    check("| 0.50 |" in row("wordcount", "1KiB"), "PSS ratio")
    check("3 x 2" in row("wordcount", "1KiB"), "calls per mode shown as rounds x n")
    check("**error**" in row("wordcount", "100KiB") and "output objects differ" in row("wordcount", "100KiB")
          and "**0." not in row("wordcount", "100KiB"), "differing outputs are an error, not a number")
    check("**error**" in row("wordcount", "1MiB") and "MemoryError" in row("wordcount", "1MiB"), "a failed cell says why")
    check("**skipped**" in row("wordcount", "10MiB") and "time budget" in row("wordcount", "10MiB"), "a skipped cell says why")
    check("**missing**" in row("hello", "none") and "exit 124" in row("hello", "none"), "a cell never reached says so")
    check("the first boot failed after 31 s" in page, "a retried cold start is said so")
    check("| wordcount | 1KiB | 9000 | 18000 | 0.50 |" in page, "cold start ratio")
    check("(max)" in row("wordcount", "1KiB"), "p99 over fewer than 100 calls is labelled max")

finish("test-vm-ab")
