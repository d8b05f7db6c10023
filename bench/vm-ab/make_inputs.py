#!/usr/bin/python3
"""bench/vm-ab/make_inputs.py OUTDIR smoke|quick|full: the cells of the vm A/B and their input objects.

The cells and the inputs are those of `nexus bench` (bench/harness), imported from it rather
than restated, so that the vm columns measure the same thing as the process-driver ones:
- the functions are bench/harness/main.py FUNCS (hello, image-rotate, wordcount, pyaes);
- hello reads no input: one sizeless cell ("none"; here its event carries a 1 KiB name);
- the sizes are main.SIZES (1 KiB .. 10 MiB); pyaes stops at main.PYAES_MAX (100 KiB);
- the objects are inputs.make(function, size) with the harness's default seed (PNG noise for
  image-rotate, Zipf-like text for wordcount, random bytes for pyaes): byte for byte the same.
Writes OUTDIR/plan.txt ("FUNCTION SIZE INPUT|-" per line, in run order) and the input files.
Order: the harness's, except that the 10 MiB cells go last: under TCG one call there takes
about a minute, so if the rig's time budget runs out it cuts those and not the small sizes.
"quick" is the earlier subset (hello and wordcount at 1 KiB); "smoke" every function at 1 KiB."""
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in bench/harness (not ours)
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
import inputs  # noqa: E402
import main as harness  # noqa: E402


def cells(profile):
    if profile == "quick":
        return [("hello", "none", 0), ("wordcount", "1KiB", 1 << 10)]
    if profile == "smoke":   # every function once, smallest size: checks the whole path fast
        return [c for c in harness.combos(harness.PROFILES["full"]) if c[1] in ("none", "1KiB")]
    all_cells = harness.combos(harness.PROFILES["full"])
    big = max(size for _, size in harness.SIZES)
    return [c for c in all_cells if c[2] < big] + [c for c in all_cells if c[2] >= big]


def main():
    out, profile = sys.argv[1], sys.argv[2]
    if profile not in ("smoke", "quick", "full"):
        sys.exit("make_inputs.py: the profile is smoke, quick or full")
    os.makedirs(out, exist_ok=True)
    plan = []
    for func, label, size in cells(profile):
        if not size:
            plan.append(f"{func} {label} -")
            continue
        name = f"{func}-{label}"
        path = os.path.join(out, name)
        if not os.path.exists(path):   # deterministic (seeded): made once, then reused
            data = inputs.make(func, size)
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.rename(path + ".tmp", path)
        plan.append(f"{func} {label} {name}")
    with open(os.path.join(out, "plan.txt"), "w") as f:
        f.write("\n".join(plan) + "\n")
    print(f"vm-ab: {len(plan)} cells ({profile}) in {out}/plan.txt", flush=True)


if __name__ == "__main__":
    main()
