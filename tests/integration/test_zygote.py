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
from test_baseline import ERRORS, PY_EXAMPLES, bucket_contents, normalize, strip_request_id
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
    deadline = time.time() + 3   # a replaced instance may still be settling after a crash
    live = instances(node, name)
    while not live and time.time() < deadline:
        time.sleep(0.05)
        live = instances(node, name)
    assert live, [i for i in status(node)["instances"] if i["function"] == name]
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
    for tags in ({"nexus:snapshot": "criu"}, {"nexus:snapshot": "zygote", "nexus:sandbox": "vm"}):
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


# ---- baseline mode through a zygote (README-sandbox.md, "Zygote cold starts", baseline)

@pytest.mark.parametrize("example", PY_EXAMPLES)
def test_example_baseline_zygote_same_as_nexus(node, s3, lam, zdeploy, example):
    """Every Python example, cold-started from a zygote in baseline mode (real boto3
    over TCP, HTTP ingress), gives the result and the S3 objects of nexus mode,
    byte for byte."""
    d = fn_dir(example)
    ev_path = os.path.join(d, "event.json")
    base_event = json.load(open(ev_path)) if os.path.exists(ev_path) else {}
    inputs = [f for f in os.listdir(d) if f.startswith("input.")]
    results, outputs = {}, {}
    for mode in ("nexus", "baseline"):
        bkt = unique(f"zb-{mode[:4]}")
        s3.create_bucket(Bucket=bkt)
        ev = dict(base_event)
        if "bucket" in ev:
            ev["bucket"] = bkt
            s3.put_object(Bucket=bkt, Key=ev["key"], Body=open(os.path.join(d, inputs[0]), "rb").read())
        name = zdeploy(d, mode=mode, buckets=[bkt], timeout=60, memory=256)
        out, err, _ = invoke(lam, name, ev)
        assert err is None, f"{example} in {mode} mode through a zygote failed: {out}"
        assert_forked(node, name)
        results[mode] = normalize(out, name)
        outputs[mode] = bucket_contents(s3, bkt)
    assert results["baseline"] == results["nexus"]
    assert outputs["baseline"].keys() == outputs["nexus"].keys()
    for k in outputs["nexus"]:
        assert outputs["baseline"][k] == outputs["nexus"][k], f"{example}: object {k} differs between modes"
    if "output_key" in base_event:
        assert base_event["output_key"] in outputs["nexus"]


@pytest.mark.parametrize("what", ["raise", "sleep", "exit", "unserializable", "fine"])
def test_errors_baseline_zygote_same_as_nexus(node, lam, zdeploy, what):
    """Handler errors, the timeout (instance killed), a crash and a marshal error come out
    of a baseline zygote child as out of a nexus-mode instance; the next call works."""
    got = {}
    for mode in ("nexus", "baseline"):
        name = zdeploy(ERRORS, mode=mode, timeout=1)
        out, err, _ = invoke(lam, name, {"what": what, "x": 42})
        got[mode] = (err, strip_request_id(out) if err else out)
        after, err2, _ = invoke(lam, name, {"what": "after"})
        assert err2 is None and after == {"ok": "after"}, (mode, after)
        assert_forked(node, name)
    assert got["baseline"] == got["nexus"]
    expect = {"raise": "ValueError", "sleep": "Sandbox.Timedout", "exit": "Runtime.ExitError",
              "unserializable": "Runtime.MarshalError", "fine": None}[what]
    err, out = got["nexus"]
    if expect:
        assert err == "Unhandled" and out["errorType"] == expect, out
    else:
        assert err is None and out == {"ok": "fine"}


def test_import_error_baseline_zygote(lam, zdeploy):
    got = {}
    for mode in ("nexus", "baseline"):
        name = zdeploy("import no_such_module\ndef handler(e, c):\n    return 1\n", mode=mode)
        got[mode] = invoke(lam, name, {})[:2]
    assert got["baseline"] == got["nexus"]
    assert got["nexus"][1] == "Unhandled" and got["nexus"][0]["errorType"] == "Runtime.ImportModuleError"


# What a baseline instance's network looks like.  Module level runs in the zygote.
BASELINE_NETID = r'''
import os, socket, time
import boto3
ZYGOTE_LISTEN = os.environ.get("NEXUS_BASELINE_LISTEN")
TOKEN = os.urandom(8).hex()
S3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3"))   # as in a snapshot after init

def handler(event, context):
    import gc
    listening = [s.getsockname() for s in gc.get_objects()
                 if isinstance(s, socket.socket) and s.fileno() >= 0 and _listening(s)]
    key = f"probe-{os.getpid()}.txt"
    S3.put_object(Bucket=event["bucket"], Key=key, Body=key.encode())
    back = S3.get_object(Bucket=event["bucket"], Key=key)["Body"].read().decode()
    time.sleep(event.get("sleep", 0))
    with open("/proc/net/dev") as f:
        ifaces = sorted(l.split(":")[0].strip() for l in f.readlines()[2:])
    return {"pid": os.getpid(), "token": TOKEN, "zygote_listen": ZYGOTE_LISTEN,
            "listen": os.environ.get("NEXUS_BASELINE_LISTEN"), "listening": [list(a) for a in listening],
            "read_back": back == key, "ifaces": ifaces, "boto3": boto3.__file__}

def _listening(s):
    return s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
'''


def test_baseline_zygote_instances_have_own_addresses(node, lam, zdeploy, bucket):
    """Two baseline instances forked from one zygote: each serves on an address of its
    own (its own namespace and veth, not the zygote's), and the real boto3 client made
    at import, in the zygote, works over TCP in each."""
    name = zdeploy(BASELINE_NETID, mode="baseline", buckets=[bucket], max_instances=2, timeout=20)
    first, err, _ = invoke(lam, name, {"bucket": bucket})
    assert err is None, first
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        futs = [ex.submit(invoke, lam, name, {"bucket": bucket, "sleep": 1.5}) for _ in range(2)]
        outs = [f.result()[0] for f in futs]
    a, b = outs
    assert a["pid"] != b["pid"] and a["token"] == b["token"] == first["token"], outs   # one zygote
    for o in outs:
        assert o["read_back"] and o["boto3"].startswith("/usr/lib/python3/dist-packages/"), o
        host, port = o["listen"].rsplit(":", 1)
        assert host.startswith("169.254.") and port == "8080", o
        assert o["listening"] == [[host, 8080]], o        # the socket nexusd made, nothing else
        assert o["listen"] != o["zygote_listen"], o       # not the zygote's address
        assert o["ifaces"] == ["eth0", "lo"], o
    assert a["listen"] != b["listen"], outs
    assert len(instances(node, name)) == 2
    assert_forked(node, name)
