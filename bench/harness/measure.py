"""Node-side accounting: CPU time of nexusd (its baseline relay threads apart)
and of every sandbox (the instance cgroups' cpuacct), CPU of the S3 server
(reported apart), and PSS of each warm instance from /proc/<pid>/smaps_rollup.

Only the system's own accounting is used: /proc/<pid>/stat, /proc/<pid>/task/*/stat,
the process driver's cgroups (nexusd/sandbox_process_cgroup.c: v1
/sys/fs/cgroup/{cpuacct,memory}/nexus/sb-*, v2 /sys/fs/cgroup/nexus/sb-*)."""
import glob
import os

TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")
CG = os.environ.get("NEXUS_CGROUP_ROOT", "/sys/fs/cgroup")


def _stat_cpu_ns(path):
    """utime+stime (ns) and comm from a /proc stat file; (0, '') if gone."""
    try:
        s = open(path).read()
    except OSError:
        return 0, ""
    comm = s[s.index("(") + 1:s.rindex(")")]
    f = s[s.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) * TICK_NS, comm


def _task_ns(task_dir):
    """(on-CPU ns, comm) of one thread: schedstat is exact, stat only has clock ticks."""
    try:
        ns = int(open(f"{task_dir}/schedstat").read().split()[0])
        comm = open(f"{task_dir}/comm").read().strip()
        return ns, comm
    except (OSError, ValueError, IndexError):
        return 0, ""


def _threads_ns(pid):
    return [_task_ns(t) for t in glob.glob(f"/proc/{pid}/task/*")]


def proc_tree_cpu_ns(pid):
    """CPU of a process and its live descendants (for the S3 server: node)."""
    if not pid:
        return 0
    total = sum(ns for ns, _ in _threads_ns(pid))
    for child in _children(pid):
        total += proc_tree_cpu_ns(child)
    return total


def _children(pid):
    out = []
    for t in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            out += [int(x) for x in open(t).read().split()]
        except OSError:
            pass
    return out


def nexusd_cpu_ns(pid):
    """(nexusd without relay threads, relay threads) in ns, per thread from /proc."""
    main = relay = 0
    for ns, comm in _threads_ns(pid):
        if comm.startswith("nx-relay"):
            relay += ns
        else:
            main += ns
    # Threads that exit during a measurement (launcher threads of cold starts)
    # would be missed; warm rounds start none.
    return main, relay


def sandbox_cgroups():
    """{group name: cpu ns} for every instance cgroup of the process driver."""
    out = {}
    for d in glob.glob(f"{CG}/cpuacct/nexus/sb-*") or glob.glob(f"{CG}/nexus/sb-*"):
        name = os.path.basename(d)
        try:
            out[name] = int(open(f"{d}/cpuacct.usage").read())
        except OSError:
            try:   # cgroup v2: usage_usec in cpu.stat
                for line in open(f"{d}/cpu.stat"):
                    if line.startswith("usage_usec"):
                        out[name] = int(line.split()[1]) * 1000
            except OSError:
                pass
    return out


class CpuSnapshot:
    def __init__(self, pids):
        self.nexusd, self.relay = nexusd_cpu_ns(pids["nexusd"])
        self.s3 = proc_tree_cpu_ns(pids["s3"])
        self.groups = sandbox_cgroups()

    def delta(self, before):
        """CPU ns spent since `before`: nexusd, relay, sandboxes, s3."""
        sb = sum(v - before.groups.get(k, 0) for k, v in self.groups.items())
        return {"nexusd": self.nexusd - before.nexusd, "relay": self.relay - before.relay,
                "sandboxes": sb, "s3": self.s3 - before.s3}


def instance_pids(pid):
    """All host pids of the sandbox whose init is `pid` (its memory cgroup's procs)."""
    try:
        for line in open(f"/proc/{pid}/cgroup"):
            _, ctrl, path = line.rstrip("\n").split(":", 2)
            if "memory" in ctrl.split(",") or (ctrl == "" and "/nexus/" in path):
                base = f"{CG}/memory{path}" if ctrl else f"{CG}{path}"
                if os.path.exists(f"{base}/cgroup.procs"):
                    return [int(x) for x in open(f"{base}/cgroup.procs").read().split()]
    except OSError:
        pass
    return [pid] + _children(pid)


def pss(pid):
    """{'pss', 'private', 'shared'} in bytes for one process (shared = PSS's shared part)."""
    r = {}
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                r[parts[0][:-1]] = int(parts[1]) * 1024
    except OSError:
        return {"pss": 0, "private": 0, "shared": 0}
    private = r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)
    return {"pss": r.get("Pss", 0), "private": private, "shared": r.get("Pss", 0) - private}


def instance_memory(pid):
    tot = {"pss": 0, "private": 0, "shared": 0, "procs": 0}
    for p in instance_pids(pid):
        m = pss(p)
        for k in m:
            tot[k] += m[k]
        tot["procs"] += 1
    return tot
