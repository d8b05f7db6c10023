"""Baseline mode (docs/baseline.md): the same functions on the conventional stack
(a veth per sandbox, the real boto3 over TCP through nexusd's relay, invocations
over HTTP to the guest's own server) behave exactly as in nexus mode."""
import json
import os
import re
import subprocess

import pytest

from conftest import FUNCTIONS, invoke, unique

PY_EXAMPLES = sorted(d for d in os.listdir(FUNCTIONS)
                     if os.path.isfile(os.path.join(FUNCTIONS, d, "app.py")))
C_EXAMPLES = sorted(d for d in os.listdir(FUNCTIONS)
                    if os.path.isfile(os.path.join(FUNCTIONS, d, "main.c")))
MODES = ("nexus", "baseline")

# Fields of a result that differ between any two invocations by nature.
VOLATILE = {"request_id", "remaining_ms"}


def normalize(out, name):
    if isinstance(out, dict):
        return {k: normalize(v, name) for k, v in out.items() if k not in VOLATILE}
    if isinstance(out, list):
        return [normalize(v, name) for v in out]
    if isinstance(out, str):
        return out.replace(name, "<function>")
    return out


def strip_request_id(err):
    err = dict(err)
    err["errorMessage"] = re.sub(r"RequestId: [0-9a-f-]+ ", "RequestId: <id> ", err["errorMessage"])
    return err


def bucket_contents(s3, bucket):
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


@pytest.fixture
def bucket_pair(s3):
    """One bucket per mode, so both modes see the same keys."""
    names = {m: unique(f"bl-{m[:4]}") for m in MODES}
    for b in names.values():
        s3.create_bucket(Bucket=b)
    yield names
    for b in names.values():
        try:
            for o in s3.list_objects_v2(Bucket=b).get("Contents", []):
                s3.delete_object(Bucket=b, Key=o["Key"])
            s3.delete_bucket(Bucket=b)
        except Exception:
            pass


def root_netns_state():
    """Interfaces and addresses of the root network namespace (where the tests run)."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    addrs = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    names = {l.split(":")[1].strip().split("@")[0] for l in links.splitlines() if ":" in l}
    addr_set = {" ".join(l.split()[1:4]) for l in addrs.splitlines()}
    return names, addr_set


@pytest.mark.parametrize("example", PY_EXAMPLES)
def test_example_same_in_both_modes(s3, lam, deploy, bucket_pair, example):
    d = os.path.join(FUNCTIONS, example)
    ev_path = os.path.join(d, "event.json")
    base_event = json.load(open(ev_path)) if os.path.exists(ev_path) else {}
    inputs = [f for f in os.listdir(d) if f.startswith("input.")]
    results, outputs = {}, {}
    for mode in MODES:
        ev = dict(base_event)
        if "bucket" in ev:
            ev["bucket"] = bucket_pair[mode]
            assert inputs, f"{example} reads S3 but has no input.* file"
            s3.put_object(Bucket=bucket_pair[mode], Key=ev["key"],
                          Body=open(os.path.join(d, inputs[0]), "rb").read())
        name = deploy(d, mode=mode, buckets=[bucket_pair[mode]], timeout=60, memory=256)
        out, err, _ = invoke(lam, name, ev)
        assert err is None, f"{example} in {mode} mode failed: {out}"
        results[mode] = normalize(out, name)
        outputs[mode] = bucket_contents(s3, bucket_pair[mode])
    assert results["baseline"] == results["nexus"]
    assert outputs["baseline"].keys() == outputs["nexus"].keys()
    for k in outputs["nexus"]:
        assert outputs["baseline"][k] == outputs["nexus"][k], f"{example}: object {k} differs between modes"
    if "output_key" in base_event:   # the comparison is of real output, not of two empty buckets
        assert base_event["output_key"] in outputs["nexus"]


@pytest.mark.parametrize("example", C_EXAMPLES)
def test_c_example_refused_in_baseline(node, lam, example):
    """A libnexus C function has no conventional-stack counterpart (the channel is its only
    storage API, it serves no HTTP): CreateFunction in baseline mode is refused, saying why."""
    from botocore.exceptions import ClientError
    from conftest import ROOT, BUILD, zip_dir
    built = os.path.join(ROOT, BUILD, "functions", example)
    if not os.path.exists(os.path.join(built, "bootstrap")):
        pytest.fail(f"{built}/bootstrap is not built: run make all")
    name = unique("blc")
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName=name, Runtime="provided.al2", Role="arn:aws:iam::000000000000:role/nexus",
                            Handler="bootstrap", Code={"ZipFile": zip_dir(built)}, Timeout=10,
                            Tags={"nexus:mode": "baseline"})
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException", e.value.response
    assert "baseline needs a python3.x runtime" in str(e.value)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name)


ERRORS = """
import os, time
def handler(event, context):
    what = event["what"]
    if what == "raise":
        raise ValueError("bad input: " + str(event.get("x")))
    if what == "sleep":
        time.sleep(10)
    if what == "exit":
        os._exit(3)
    if what == "unserializable":
        return {"x": object()}
    return {"ok": what}
"""


@pytest.mark.parametrize("what", ["raise", "sleep", "exit", "unserializable", "fine"])
def test_errors_same_in_both_modes(lam, deploy, what):
    got = {}
    for mode in MODES:
        name = deploy(ERRORS, mode=mode, timeout=1)
        out, err, _ = invoke(lam, name, {"what": what, "x": 42})
        got[mode] = (err, strip_request_id(out) if err else out)
    assert got["baseline"] == got["nexus"]
    err, out = got["nexus"]
    expect = {"raise": "ValueError", "sleep": "Sandbox.Timedout", "exit": "Runtime.ExitError",
              "unserializable": "Runtime.MarshalError", "fine": None}[what]
    if expect:
        assert err == "Unhandled" and out["errorType"] == expect, out
    else:
        assert err is None and out == {"ok": "fine"}
    if what == "sleep":
        assert "Task timed out after 1.00 seconds" in out["errorMessage"]


def test_import_error_same_in_both_modes(lam, deploy):
    got = {}
    for mode in MODES:
        name = deploy("import no_such_module\ndef handler(e, c):\n    return 1\n", mode=mode)
        out, err, _ = invoke(lam, name, {})
        got[mode] = (err, out)
    assert got["baseline"] == got["nexus"]
    assert got["nexus"][1]["errorType"] == "Runtime.ImportModuleError"


def test_instance_recovers_after_crash(lam, deploy):
    name = deploy(ERRORS, mode="baseline", timeout=2)
    out, err, _ = invoke(lam, name, {"what": "exit"})
    assert err == "Unhandled" and out["errorType"] == "Runtime.ExitError"
    out, err, _ = invoke(lam, name, {"what": "after"})
    assert err is None and out == {"ok": "after"}


NETPROBE = """
import os, socket
import boto3
def handler(event, context):
    with open("/proc/net/dev") as f:
        ifaces = sorted(l.split(":")[0].strip() for l in f.readlines()[2:])
    res = {"ifaces": ifaces, "endpoint": os.environ.get("AWS_ENDPOINT_URL_S3"),
           "has_key": bool(os.environ.get("AWS_ACCESS_KEY_ID")), "botocore": boto3.__file__}
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])
    s3.put_object(Bucket=event["bucket"], Key="probe.txt", Body=b"over tcp")
    res["read_back"] = s3.get_object(Bucket=event["bucket"], Key="probe.txt")["Body"].read().decode()
    for label, (host, port) in event["targets"].items():
        try:
            socket.create_connection((host, port), timeout=2).close()
            res[label] = "connected"
        except OSError as e:
            res[label] = type(e).__name__
    return res
"""


def test_baseline_sandbox_network(node, s3, lam, deploy, bucket):
    before = root_netns_state()
    name = deploy(NETPROBE, mode="baseline", buckets=[bucket], timeout=20)
    s3port = int(node.status["s3"]["endpoint"].rsplit(":", 1)[1].rstrip("/"))
    out, err, _ = invoke(lam, name, {"bucket": bucket, "targets": {
        "host_s3": ["127.0.0.1", s3port],     # the root namespace's loopback: not reachable
        "outside": ["192.0.2.1", 80]}})
    assert err is None, out
    assert out["ifaces"] == ["eth0", "lo"], out        # exactly lo + one veth
    assert out["endpoint"].startswith("http://169.254.0.1:"), out   # the relay, not host loopback
    assert out["has_key"] and out["botocore"].startswith("/usr/lib/python3/dist-packages/"), out  # real boto3
    assert out["read_back"] == "over tcp"
    assert s3.get_object(Bucket=bucket, Key="probe.txt")["Body"].read() == b"over tcp"
    assert out["host_s3"] != "connected" and out["outside"] != "connected", out
    # While the instance is alive (and after): nothing new in the root namespace.
    after = root_netns_state()
    assert after[0] == before[0], f"interfaces appeared in the root namespace: {after[0] - before[0]}"
    assert after[1] == before[1], f"addresses appeared in the root namespace: {after[1] - before[1]}"


def test_baseline_instances_scale_and_reuse_addresses(lam, deploy):
    """Several concurrent baseline instances, then new ones after they stop: veths are torn down."""
    import concurrent.futures
    name = deploy("import time\ndef handler(e, c):\n    time.sleep(0.3)\n    return e\n", mode="baseline",
                  max_instances=4)
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        outs = list(ex.map(lambda i: invoke(lam, name, {"i": i}), range(8)))
    assert [o[0] for o in outs] == [{"i": i} for i in range(8)] and all(o[1] is None for o in outs)
    # Updating the code retires every instance (their sandboxes and veths go);
    # the new ones must get working networks again.
    from conftest import zip_code
    lam.update_function_code(FunctionName=name, ZipFile=zip_code("def handler(e, c):\n    return {'v': 2, **e}\n"))
    for i in range(3):
        out, err, _ = invoke(lam, name, {"i": i})
        assert err is None and out == {"v": 2, "i": i}, out


HOSTILE = """
import gc, socket, time
def handler(event, context):
    # Write a forged answer straight onto nexusd's connection to this guest's server.
    conns = [o for o in gc.get_objects() if isinstance(o, socket.socket) and o.fileno() >= 0]
    for s in conns:
        try:
            s.getpeername()
        except OSError:
            continue          # the listening socket
        s.sendall(event["answer"].encode())
    time.sleep(5)
    return "unreachable"
"""


@pytest.mark.parametrize("answer", [
    "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\nX-Nexus-Status: ok\r\n\r\n",
    "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Nexus-Status: ok\r\n\r\n{}garbage",
    "x" * 20000,
])
def test_hostile_guest_answer_stops_only_that_instance(lam, deploy, answer):
    bad = deploy(HOSTILE, mode="baseline", timeout=10)
    good = deploy("def handler(e, c):\n    return e\n", mode="baseline")
    assert invoke(lam, good, {"a": 1})[:2] == ({"a": 1}, None)
    out, err, _ = invoke(lam, bad, {"answer": answer})
    assert err == "Unhandled" and out["errorType"] == "Runtime.ExitError", out
    assert "baseline:" in out["errorMessage"], out
    assert invoke(lam, good, {"a": 2})[:2] == ({"a": 2}, None)   # nexusd and the others unaffected


def test_address_reused_by_a_new_instance(node, lam, deploy):
    """A stopped instance's address goes to the next one (a new veth, a new MAC unless
    fixed per slot): the node side must reach the new one at once, not after its
    neighbour cache times out."""
    import time
    # Another live instance keeps the bridge up: with none, the bridge loses its
    # carrier when the last veth goes and the kernel flushes its neighbour cache.
    keeper = deploy("def handler(e, c):\n    return e\n", mode="baseline")
    assert invoke(lam, keeper, {"k": 1})[:2] == ({"k": 1}, None)
    for round_ in range(3):
        name = deploy("def handler(e, c):\n    return e\n", mode="baseline", timeout=3)
        assert invoke(lam, name, {"r": round_})[:2] == ({"r": round_}, None)
        lam.delete_function(FunctionName=name)
        deadline = time.time() + 10
        while time.time() < deadline:
            st = json.loads(node.cli("status", "--json").stdout)
            if not [i for i in st.get("instances", []) if i.get("function") == name]:
                break
            time.sleep(0.05)


def test_large_event_and_result_same_in_both_modes(lam, deploy):
    """~5 MB in and out: the forwarder's partial writes and reads, and the answer size checks."""
    blob = "x" * (5 * 1024 * 1024)
    got = {}
    for mode in MODES:
        name = deploy("def handler(e, c):\n    return {'n': len(e['blob']), 'blob': e['blob'][::-1]}\n", mode=mode,
                      memory=512, timeout=30)
        out, err, _ = invoke(lam, name, {"blob": blob})
        got[mode] = (err, out)
    assert got["nexus"][0] is None and got["nexus"][1]["n"] == len(blob)
    assert got["baseline"] == got["nexus"]
    # A result over 6 MB fails the same way in both modes.
    errs = {}
    for mode in MODES:
        name = deploy("def handler(e, c):\n    return 'y' * (7 * 1024 * 1024)\n", mode=mode, memory=512, timeout=30)
        out, err, _ = invoke(lam, name, {})
        errs[mode] = (err, out)
    assert errs["baseline"] == errs["nexus"]
    assert errs["nexus"][1]["errorType"] == "Function.ResponseSizeTooLarge"


def node_bridge(node):
    """nxbr0's MAC and the veths on it, read inside nexusd's node namespace (found through nexusd's
    namespace fds, as the namespace has no name)."""
    pid = int(open(os.path.join(node.home, "nexusd.pid")).read().split()[0])
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if not os.readlink(f"/proc/{pid}/fd/{fd}").startswith("net:"):
                continue
        except OSError:
            continue
        out = subprocess.run(["nsenter", f"--net=/proc/{pid}/fd/{fd}", "ip", "-o", "link", "show"],
                             capture_output=True, text=True).stdout
        if " nxbr0:" not in out:
            continue
        mac = next(l.split("link/ether ")[1].split()[0] for l in out.splitlines() if " nxbr0:" in l)
        veths = sorted(l.split(":")[1].strip().split("@")[0] for l in out.splitlines() if ": nxv" in l)
        return mac, veths
    raise AssertionError("no namespace of nexusd's has the bridge nxbr0")


def test_bridge_mac_fixed_while_veths_come_and_go(node, lam, deploy):
    """The bridge's MAC must not follow its ports' (random) MACs: a namespace that outlives a
    veth's coming or going (a zygote's, an instance's) would keep sending to a stale MAC."""
    import concurrent.futures
    import time
    name = deploy("import time\ndef handler(e, c):\n    time.sleep(0.2)\n    return e\n", mode="baseline",
                  max_instances=3, timeout=5)
    assert invoke(lam, name, {"i": 0})[:2] == ({"i": 0}, None)
    mac0, _ = node_bridge(node)
    assert mac0 == "02:4e:58:ff:00:01", mac0
    seen = set()
    for round_ in range(2):   # new veths, then (after an update retires them) others
        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            outs = list(ex.map(lambda i: invoke(lam, name, {"i": i}), range(3)))
        assert all(o[1] is None for o in outs), outs
        mac, veths = node_bridge(node)
        seen.update(veths)
        assert mac == mac0, (mac, veths)
        from conftest import zip_code
        lam.update_function_code(FunctionName=name, ZipFile=zip_code(
            f"def handler(e, c):\n    return {{'v': {round_}, **e}}\n"))
        time.sleep(0.3)
    assert len(seen) >= 2, seen   # veths really came and went
    assert node_bridge(node)[0] == mac0
