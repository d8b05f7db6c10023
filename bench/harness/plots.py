"""gnuplot PNGs for the results page: latency CDFs (one per function, all sizes,
both modes), CPU and memory bars, the density curve.  Data files are kept next
to the PNGs (latency-*.csv, *.dat) so a plot can be redrawn by hand."""
import os
import subprocess

TERM = "set terminal pngcairo size 900,540 font 'DejaVu Sans,10'"


def _gnuplot(script, out):
    p = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if p.returncode != 0:
        print(f"bench: gnuplot failed for {out}: {p.stderr[-500:]}")
        return False
    return True


def _cdf_rows(lat):
    v = sorted(lat)
    n = len(v)
    step = max(1, n // 400)
    return [(v[i], (i + 1) / n) for i in range(0, n, step)] + [(v[-1], 1.0)]


def cdfs(results, out):
    pngs = []
    funcs = {}
    for key in results["warm"]:
        f, s = key.split("/")
        funcs.setdefault(f, []).append(s)
    for func, sizes in funcs.items():
        plots = []
        for i, size in enumerate(sizes):
            d = results["warm"][f"{func}/{size}"]
            for mode, dash in (("nexus", 1), ("baseline", 2)):
                lat = d[mode]["lat"]
                if not lat:
                    continue
                path = os.path.join(out, f"latency-{func}-{size}-{mode}.csv")
                with open(path, "w") as fh:
                    fh.write("latency_ms,cdf\n")
                    fh.writelines(f"{x:.4f},{y:.5f}\n" for x, y in _cdf_rows(lat))
                plots.append(f"'{path}' using 1:2 every ::1 with lines lw 2 dt {dash} lc {i + 1} "
                             f"title '{mode} {size}'")
        png = f"cdf-{func}.png"
        script = (f"{TERM}\nset output '{os.path.join(out, png)}'\nset datafile separator ','\n"
                  f"set title 'Warm latency CDF: {func} (solid nexus, dashed baseline)'\nset logscale x\n"
                  "set xlabel 'latency (ms)'\nset ylabel 'fraction of invocations'\nset key bottom right\n"
                  "set grid\nplot " + ", ".join(plots) + "\n")
        if plots and _gnuplot(script, png):
            pngs.append((f"warm latency CDF, {func}", png))
    return pngs


def bars(rows, out, metrics, png, title, ylabel):
    """Clustered bars, one group per function/size, one bar per (metric, mode)."""
    by = {}
    for r in rows:
        if r["metric"] in metrics:
            by.setdefault((r["function"], r["size"]), {})[r["metric"]] = r
    if not by:
        return []
    dat = os.path.join(out, png.replace(".png", ".dat"))
    cols = [(m, mode) for m in metrics for mode in ("nexus", "baseline")]
    with open(dat, "w") as f:
        f.write("group " + " ".join(f"{m}-{mode}" for m, mode in cols) + "\n")
        for (func, size), d in by.items():
            vals = [d[m][mode] if m in d and d[m][mode] is not None else 0 for m, mode in cols]
            f.write(f"{func}/{size} " + " ".join(f"{v:.4f}" for v in vals) + "\n")
    using = ", ".join(f"'' using {i + 2} title '{m.replace('_', ' ')} {mode}'" if i else
                      f"'{dat}' using 2:xtic(1) title '{m.replace('_', ' ')} {mode}'"
                      for i, (m, mode) in enumerate(cols))
    script = (f"{TERM}\nset output '{os.path.join(out, png)}'\nset title '{title}'\nset ylabel '{ylabel}'\n"
              "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
              "set xtics rotate by -30\nset key top left\nset grid ytics\nset logscale y\nplot " + using + "\n")
    return [(title, png)] if _gnuplot(script, png) else []


def density(results, out):
    dens = results.get("density")
    if not dens:
        return []
    dat = os.path.join(out, "density.dat")
    with open(dat, "w") as f:
        for mode in ("nexus", "baseline"):
            f.write(f"# {mode}: N p50_ms p99_ms\n")
            for s in dens["steps"][mode]:
                p99 = s["p99"] if s["p99"] != float("inf") else 1e4
                f.write(f"{s['n']} {s['p50'] or 0:.4f} {p99:.4f}\n")
            f.write("\n\n")
    png = "density.png"
    script = (f"{TERM}\nset output '{os.path.join(out, png)}'\n"
              f"set title 'p99 latency vs warm instances ({dens['rate']:.0f} req/s per instance, bursty trace)'\n"
              "set xlabel 'warm instances (N)'\nset ylabel 'p99 latency (ms)'\nset logscale y\nset grid\n"
              f"set key top left\nplot '{dat}' index 0 using 1:3 with linespoints lw 2 title 'nexus p99', "
              f"'' index 1 using 1:3 with linespoints lw 2 dt 2 title 'baseline p99', "
              f"{dens['slo_ms']:.4f} with lines lc rgb 'red' title 'SLO'\n")
    return [("density", png)] if _gnuplot(script, png) else []


def make_all(results, rows, out):
    pngs = cdfs(results, out)
    pngs += bars(rows, out, ["cpu_ms_per_inv"], "cpu.png", "Node CPU per invocation (nexusd + sandboxes)",
                 "CPU ms per invocation")
    pngs += bars(rows, out, ["private_mib", "shared_mib"], "memory.png",
                 "Memory per warm instance (PSS: private and shared part)", "MiB")
    pngs += density(results, out)
    return pngs
