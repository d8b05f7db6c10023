"""--profile: where the time and the bytes go, for the results page.

Time: `perf record -e cpu-clock -g` (a software event: this VM has no hardware
counters, `perf stat -e instructions` is <not supported>) on nexusd and the
instance's processes while the load generator runs warm invocations; reported
by command/DSO and by symbol.  Bytes: the instance's largest mappings by PSS
(/proc/<pid>/smaps)."""
import os
import subprocess
import time

import measure
from node import BIN

CASES = [("hello", "none", 2000), ("wordcount", "1KiB", 1000)]


def _smaps_top(pids, n=12):
    rows = {}
    for pid in pids:
        name = None
        try:
            for line in open(f"/proc/{pid}/smaps"):
                parts = line.split()
                if not parts:
                    continue
                if not parts[0].endswith(":"):
                    name = parts[5] if len(parts) > 5 else "[anon]"
                elif parts[0] == "Pss:":
                    rows[name] = rows.get(name, 0) + int(parts[1])
        except OSError:
            pass
    top = sorted(rows.items(), key=lambda kv: -kv[1])[:n]
    return "\n".join(f"{kb:8d} kB  {name}" for name, kb in top)


def run(node, out, workdir, log, event):
    made = []
    nexusd = node.pids()["nexusd"]
    for func, size, n in CASES:
        payload = os.path.join(workdir, f"event-{func}-{size}.json")
        for mode in ("nexus", "baseline"):
            fn = f"{func}-{mode}"
            inst = [i for i in node.nexus_status()["instances"] if i["function"] == fn and i.get("pid")]
            if not inst:
                node.invoke(fn, event(func, size))
                inst = [i for i in node.nexus_status()["instances"] if i["function"] == fn and i.get("pid")]
            pids = measure.instance_pids(inst[0]["pid"])
            data = os.path.join(workdir, f"perf-{fn}.data")
            perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-g", "-o", data,
                                     "-p", ",".join(str(p) for p in [nexusd] + pids)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)   # perf attaches slowly on a loaded node: a 0.2 s run was once recorded empty
            subprocess.run([os.path.join(BIN, "nexus-bench-load"), "closed", node.ingress, fn, payload, str(n), "5",
                            os.path.join(workdir, "lat-prof.txt")], capture_output=True)
            perf.send_signal(2)
            perf.wait()
            rep = []
            for sort in ("comm,dso", "comm,dso,sym"):
                p = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
                                    "--sort", sort, "--percent-limit", "1"], capture_output=True, text=True)
                rep.append(f"### perf report --sort {sort}\n" +
                           "\n".join(line for line in p.stdout.splitlines() if line and not line.startswith("#")))
            name = f"profile-{fn}-{size}.txt"
            with open(os.path.join(out, name), "w") as f:
                f.write(f"# {n} warm invocations of {fn} ({size}); perf record -e cpu-clock -g on nexusd "
                        f"(pid {nexusd}) and the instance (pids {pids})\n\n" + "\n\n".join(rep) +
                        "\n\n### largest mappings of the instance by PSS\n" + _smaps_top(pids) + "\n")
            os.unlink(data)
            made.append({"title": f"{fn} {size}: CPU by command/DSO/symbol, memory by mapping", "file": name})
            log(f"profile {fn} {size}: {name}")
    return made
