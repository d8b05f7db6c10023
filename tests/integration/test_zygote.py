"""Zygote cold starts (tag "nexus:snapshot": "zygote"; nexusd/sandbox_zygote.c,
guest/python/nexusrt/zygote.py, nexusd/README-sandbox.md "Zygote cold starts").

An instance forked from a zygote is recognisable from the host: its pid
namespace is its zygote's, so its pid inside (NSpid's last field) is not 1,
while a fresh process sandbox is pid 1 of its own namespace.
"""
import concurrent.futures
import json
import os
import signal
import time

import pytest

from conftest import FUNCTIONS, create_function, delete_functions, invoke, unique, zip_code
from test_examples import fn_dir, stage_input


@pytest.fixture
def zdeploy(lam):
    """zdeploy(code_or_dir, snapshot="zygote", **kw) -> name; deleted afterwards."""
    created = []

    def _deploy(code, snapshot="zygote", buckets=(), timeout=10, memory=128, max_instances=None, mode="nexus"):
        name = unique("zy")
        create_function(lam, name, code, buckets=buckets, timeout=timeout, memory=memory, mode=mode,
                        max_instances=max_instances, tags={"nexus:snapshot": snapshot})
        created.append(name)
        return name

    yield _deploy
    delete_functions(lam, created)


def status(node):
    import urllib.request
    with urllib.request.urlopen(node.ingress + "/nexus/v1/status", timeout=10) as r:
        return json.loads(r.read())


def instances(node, name):
    return [i for i in status(node)["instances"] if i["function"] == name and i.get("pid")]


def nspid(pid):
    """The pid's numbers from the host's pid namespace inwards."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("NSpid:"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError("no NSpid line")


def ppid(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError("no PPid line")


def assert_forked(node, name):
    live = instances(node, name)
    assert live, status(node)
    for i in live:
        assert i["sandbox"] == "process-zygote", i
        ns = nspid(i["pid"])
        assert len(ns) >= 2 and ns[-1] != 1, f"instance {i} is pid {ns[-1]} inside: not forked from a zygote"


# Reports what an instance can see.  Module-level state is created once, in the zygote.
PROBE = r'''
import os, random, socket, time
TOKEN = os.urandom(8).hex()          # the zygote's identity: same in all its children
IMPORT_PID = os.getpid()
STATE = {"value": None}

def handler(event, context):
    op = event.get("op")
    if op == "crash":
        os.kill(os.getpid(), 11)
    if op == "set":
        STATE["value"] = event["value"]
        time.sleep(event.get("sleep", 0))
    others = {}
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) not in (os.getpid(), 1):
            res = []
            for what in ("mem", "environ"):
                try:
                    with open(f"/proc/{p}/{what}", "rb") as f:
                        f.read(1)
                    res.append(what + ":readable")
                except OSError as e:
                    res.append(f"{what}:{type(e).__name__}")
            try:   # the numbers may be listed (the directory's owner is the shared uid)...
                fds = os.listdir(f"/proc/{p}/fd")
            except OSError:
                fds = []
            for fd in fds:   # ...but none may be opened (that would be the sibling's region)
                try:
                    os.close(os.open(f"/proc/{p}/fd/{fd}", os.O_RDONLY))
                    res.append(f"fd{fd}:readable")
                except OSError as e:
                    res.append(f"fd{fd}:{type(e).__name__}")
            others[p] = res
    maps = [l.split()[4] for l in open("/proc/self/maps") if "memfd:" in l]   # their inodes
    from nexusrt import channel
    ch = channel.get()
    try:
        socket.create_connection(("1.1.1.1", 80), timeout=1)
        net = "connected"
    except OSError as e:
        net = type(e).__name__
    return {"pid": os.getpid(), "import_pid": IMPORT_PID, "token": TOKEN, "value": STATE["value"],
            "rand": random.random(), "others": others, "memfd_maps": maps, "generation": ch.generation,
            "region_size": ch.size, "net": net}
'''


@pytest.mark.parametrize("example", ["hello", "image-rotate", "wordcount", "pyaes"])
def test_examples_through_zygote(node, s3, lam, zdeploy, bucket, example):
    """Every example cold-starts from its zygote and produces its output."""
    ev = stage_input(s3, example, bucket)[0] if example != "hello" else {"name": "Nexus"}
    name = zdeploy(fn_dir(example), buckets=[bucket], timeout=60, memory=256)
    out, err, _ = invoke(lam, name, ev)
    assert err is None, out
    if example == "hello":
        assert out["greeting"] == "Hello, Nexus!" and out["function"] == name
    else:
        assert s3.head_object(Bucket=bucket, Key=ev["output_key"])["ContentLength"] > 0
    assert_forked(node, name)
    out2, err2, _ = invoke(lam, name, ev)   # warm, same instance
    assert err2 is None, out2


def test_attach_after_import(node, lam, zdeploy):
    """The handler module was imported by the zygote (pid 1 of the namespace) and
    the instance attached its own channel afterwards."""
    name = zdeploy(PROBE)
    out, err, _ = invoke(lam, name, {})
    assert err is None, out
    assert out["import_pid"] == 1 and out["pid"] != 1, out
    assert out["generation"] >= 1 and out["region_size"] > 0
    assert len(set(out["memfd_maps"])) == 1, out["memfd_maps"]   # only its own region
    assert out["net"] in ("PermissionError", "OSError"), out    # still no network
    assert_forked(node, name)


def test_instances_are_separate(node, lam, zdeploy):
    """Two instances forked from one zygote: own memory, own region, fresh random
    state, and neither can read the other's memory, environment or fds."""
    name = zdeploy(PROBE, max_instances=2)
    invoke(lam, name, {})   # the zygote is up
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        futs = [ex.submit(invoke, lam, name, {"op": "set", "value": v, "sleep": 1.5}) for v in ("a", "b")]
        outs = [f.result()[0] for f in futs]
    a, b = outs
    assert a["pid"] != b["pid"], outs
    assert {a["value"], b["value"]} == {"a", "b"}, outs   # each sees its own write only
    assert a["token"] == b["token"], outs                 # one zygote
    assert a["rand"] != b["rand"], outs                   # reseeded after fork
    assert set(a["memfd_maps"]).isdisjoint(b["memfd_maps"]), outs
    for o, other in ((a, b), (b, a)):
        seen = o["others"].get(str(other["pid"]))
        assert seen is not None, o["others"]
        assert not [r for r in seen if r.endswith("readable")], seen
        assert any(r.startswith("fd") for r in seen), seen   # the fd check really ran
    assert len(instances(node, name)) == 2


def test_crashed_child_keeps_zygote(node, lam, zdeploy):
    name = zdeploy(PROBE)
    first, err, _ = invoke(lam, name, {})
    assert err is None, first
    out, err, _ = invoke(lam, name, {"op": "crash"})
    assert err == "Unhandled" and out["errorType"] == "Runtime.ExitError", out
    again, err, _ = invoke(lam, name, {})
    assert err is None, again
    assert again["token"] == first["token"] and again["pid"] != first["pid"], (first, again)
    assert_forked(node, name)


def test_zygote_death_is_handled(node, lam, zdeploy):
    """SIGKILL the zygote: its instances die with it (it is their pid namespace's
    init); the next invocation gets a new zygote."""
    name = zdeploy(PROBE)
    first, err, _ = invoke(lam, name, {})
    assert err is None, first
    (inst,) = instances(node, name)
    zygote = ppid(inst["pid"])
    assert nspid(zygote)[-1] == 1
    os.kill(zygote, signal.SIGKILL)
    deadline = time.time() + 10
    while instances(node, name) and time.time() < deadline:
        time.sleep(0.05)
    again, err, _ = invoke(lam, name, {})
    assert err is None, again
    assert again["token"] != first["token"], (first, again)
    assert_forked(node, name)


def test_update_code_gets_new_zygote(node, lam, zdeploy):
    name = zdeploy("def handler(e, c):\n    return 'v1'\n")
    assert invoke(lam, name, {})[0] == "v1"
    lam.update_function_code(FunctionName=name, ZipFile=zip_code("def handler(e, c):\n    return 'v2'\n"))
    deadline = time.time() + 10
    while time.time() < deadline:
        out, err, _ = invoke(lam, name, {})
        if out == "v2":
            break
        time.sleep(0.1)
    assert out == "v2" and err is None
    assert_forked(node, name)


def test_unsuitable_module_falls_back_to_fresh(node, lam, zdeploy):
    """A module that starts a thread at import cannot be forked safely: fresh starts."""
    name = zdeploy("import threading, time, os\n"
                   "threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n"
                   "def handler(e, c):\n    return os.getpid()\n")
    out, err, _ = invoke(lam, name, {})
    assert err is None and out == 1, out   # pid 1 of its own namespace: a fresh sandbox


def test_import_error_through_zygote(lam, zdeploy):
    name = zdeploy("import no_such_module_xyz\ndef handler(e, c):\n    return 1\n")
    out, err, _ = invoke(lam, name, {})
    assert err == "Unhandled" and out["errorType"] == "Runtime.ImportModuleError", out


def test_snapshot_tag_validated(lam):
    from botocore.exceptions import ClientError
    for tags in ({"nexus:snapshot": "criu"}, {"nexus:snapshot": "zygote", "nexus:mode": "baseline"}):
        with pytest.raises(ClientError) as ei:
            lam.create_function(FunctionName=unique("zybad"), Runtime="python3.11", Role="arn:aws:iam::0:role/x",
                                Handler="app.handler", Code={"ZipFile": zip_code("def handler(e,c): pass\n")},
                                Tags=tags)
        assert "nexus:snapshot" in str(ei.value)


def test_zygote_death_mid_invocation(node, lam, zdeploy):
    """The zygote dies while one of its instances runs an invocation: that
    invocation fails with Runtime.ExitError, like a crash; the next one works."""
    name = zdeploy(PROBE, timeout=30)
    first, err, _ = invoke(lam, name, {})
    assert err is None, first
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(invoke, lam, name, {"op": "set", "value": "x", "sleep": 20})
        deadline = time.time() + 10
        busy = []
        while not busy and time.time() < deadline:
            busy = [i for i in instances(node, name) if i["state"] == "busy"]
            time.sleep(0.05)
        assert busy, status(node)
        os.kill(ppid(busy[0]["pid"]), signal.SIGKILL)
        out, err, _ = fut.result(timeout=20)
    assert err == "Unhandled" and out["errorType"] == "Runtime.ExitError", out
    again, err, _ = invoke(lam, name, {})
    assert err is None and again["token"] != first["token"], again
