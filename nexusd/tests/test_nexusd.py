"""nexusd on its own: started directly (no CLI, no S3 server), talked to over HTTP.

Covers what the integration suite does not: code package safety, persistence across
a restart, throttling, scale to zero, Event invocations, configuration updates,
status/logs/metrics shapes, and a clean SIGTERM.  Functions need the guest rootfs
and runtime; without them those tests are skipped with the reason.
"""
import base64
import io
import json
import os
import signal
import stat
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD", "build")
NEXUSD = os.path.join(ROOT, BUILD, "bin", "nexusd")
RUNTIME = os.path.join(ROOT, BUILD, "runtime")
ROOTFS = os.path.join(ROOT, BUILD, "rootfs")
HAVE_GUEST = os.path.isfile(os.path.join(ROOTFS, "usr/bin/python3")) and \
    os.path.isfile(os.path.join(RUNTIME, "python/bootstrap.py"))
needs_guest = pytest.mark.skipif(not HAVE_GUEST, reason=f"no guest rootfs/runtime ({ROOTFS}, {RUNTIME}): "
                                 "run `make rootfs runtime`")


class Daemon:
    def __init__(self, state, *extra):
        self.state = state
        self.log = open(os.path.join(state, "nexusd.log"), "ab")
        args = [NEXUSD, "--listen", "127.0.0.1:0", "--state-dir", os.path.join(state, "st"),
                "--runtime-dir", RUNTIME, "--rootfs", ROOTFS, *extra]
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.PIPE,
                                  env=dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y",
                                           AWS_ENDPOINT_URL="http://127.0.0.1:9"))
        self.url = None
        deadline = time.time() + 20
        while time.time() < deadline:
            line = self.p.stderr.readline().decode()
            if not line:
                break
            self.log.write(line.encode())
            if "nexusd: ready on " in line:
                self.url = line.split("ready on ", 1)[1].strip()
                break
        assert self.url, "nexusd did not become ready"
        # keep draining stderr into the log file
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.p.stderr:
            self.log.write(line)
            self.log.flush()

    def req(self, method, path, body=None, headers=None):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        r = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(r, timeout=60) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(20)
        self.log.close()
        return rc


@pytest.fixture
def state():
    d = tempfile.mkdtemp(prefix="nexusd-test-")
    yield d
    text = open(os.path.join(d, "nexusd.log"), errors="replace").read() if os.path.exists(
        os.path.join(d, "nexusd.log")) else ""
    assert "AddressSanitizer" not in text and "runtime error:" not in text, text[-3000:]
    subprocess.run(["rm", "-rf", d])


@pytest.fixture
def nd(state):
    d = Daemon(state, "--keep-alive", "600", "--max-instances", "2", "--queue-depth", "1")
    yield d
    if d.p.poll() is None:
        d.stop()


def zip_of(files, symlink=None):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
        if symlink:
            info = zipfile.ZipInfo(symlink[0])
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, symlink[1])
    return base64.b64encode(b.getvalue()).decode()


def create(d, name, code, **kw):
    body = {"FunctionName": name, "Runtime": "python3.11", "Role": "r", "Handler": "app.handler",
            "Code": {"ZipFile": zip_of({"app.py": code})}, **kw}
    return d.req("POST", "/2015-03-31/functions", body)


def invoke(d, name, payload=b"{}", headers=None):
    return d.req("POST", f"/2015-03-31/functions/{name}/invocations", payload, headers)


def test_zip_slip_and_symlinks_are_rejected(nd):
    for files, link in (({"../evil.py": "x"}, None), ({"/abs.py": "x"}, None), ({"a\\b.py": "x"}, None),
                        ({"app.py": "x"}, ("link", "/etc/passwd"))):
        st, h, body = nd.req("POST", "/2015-03-31/functions", {
            "FunctionName": "bad", "Runtime": "python3.11", "Role": "r", "Handler": "app.handler",
            "Code": {"ZipFile": zip_of(files, link)}})
        assert st == 400, body
        assert h["x-amzn-ErrorType"] == "InvalidParameterValueException"
    assert not os.path.exists(os.path.join(nd.state, "evil.py"))
    assert os.listdir(os.path.join(nd.state, "st", "code")) == []   # nothing left behind
    st, _, body = nd.req("POST", "/2015-03-31/functions", {
        "FunctionName": "bad", "Handler": "app.handler", "Role": "r", "Code": {"ZipFile": "!!notbase64"}})
    assert st == 400
    st, _, _ = nd.req("POST", "/2015-03-31/functions", {
        "FunctionName": "bad", "Handler": "app.handler", "Role": "r", "Code": {"ZipFile": zip_of({"a": "b"})},
        "Tags": {"nexus:sandbox": "nonesuch"}})
    assert st == 400
    st, _, _ = nd.req("POST", "/2015-03-31/functions", {
        "FunctionName": "../x", "Handler": "app.handler", "Code": {"ZipFile": zip_of({"a": "b"})}})
    assert st == 400


def test_snapshot_tag_and_metrics(nd):
    """nexus:snapshot: 'vm' (the default for vm functions) or 'off'; 'zygote' only on
    process, 'vm' only on vm.  The vm snapshot counters are always in /metrics
    (their behaviour is tested in microVMs: tests/vm/in-l1-snapshot.sh)."""
    src = "def handler(e, c):\n    return 1\n"
    ok = [({"nexus:sandbox": "vm"}, "vm-default"), ({"nexus:sandbox": "vm", "nexus:snapshot": "off"}, "vm-off"),
          ({"nexus:sandbox": "vm", "nexus:snapshot": "vm"}, "vm-on"),
          ({"nexus:sandbox": "process", "nexus:snapshot": "off"}, "p-off")]
    for tags, name in ok:
        st, _, body = create(nd, name, src, Tags=tags)
        assert st == 201, (tags, body)
    bad = [({"nexus:sandbox": "vm", "nexus:snapshot": "zygote"}, "is for the process sandbox"),
           ({"nexus:sandbox": "process", "nexus:snapshot": "vm"}, "needs the vm sandbox"),
           ({"nexus:snapshot": "sometimes"}, "must be 'vm', 'zygote' or 'off'")]
    for tags, why in bad:
        st, h, body = create(nd, "snapbad", src, Tags=tags)
        assert st == 400 and h["x-amzn-ErrorType"] == "InvalidParameterValueException", body
        assert why in body.decode(), body
    metrics = nd.req("GET", "/metrics")[2].decode()
    for m in ("nexus_vm_snapshot_restores_total 0", "nexus_vm_snapshot_takes_total 0",
              "nexus_vm_snapshot_fallbacks_total 0", "nexus_vm_fresh_boots_total 0"):
        assert m in metrics, metrics
    for _, name in ok:
        assert nd.req("DELETE", f"/2015-03-31/functions/{name}")[0] == 204


def _metric(d, name):
    for line in d.req("GET", "/metrics")[2].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _wait_for(pred, secs=10):
    deadline = time.time() + secs
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def _wait_no_instances(d, secs=15):
    return _wait_for(lambda: json.loads(d.req("GET", "/nexus/v1/status")[2])["instances"] == [], secs)


# The vm driver's tests against tests/fake_vmm.py build a runtime image.
needs_vm_runtime = pytest.mark.skipif(
    not os.path.isfile(os.path.join(RUNTIME, "lib", "libnexus.so")) or not os.path.exists("/sbin/mkfs.ext4"),
    reason="needs build/runtime (make runtime) and mkfs.ext4")


@needs_vm_runtime
def test_vm_snapshot_flow_with_a_fake_monitor(state, monkeypatch):
    """The vm driver's snapshot logic against tests/fake_vmm.py (the monitor's side of the
    contract, no KVM): the first cold start boots and takes the snapshot (atomically, into
    <state>/snapshots/<function>-<hash>/), after scale-to-zero the next one restores with a
    fresh region generation, a corrupt snapshot is refused (exit 72), deleted and replaced by a
    fresh boot that still answers, a restored guest that never re-attaches is given up on, and
    deleting the function removes its snapshots."""
    fake = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_vmm.py")
    for k, v in (("NEXUS_VMM", fake), ("NEXUS_GUEST_KERNEL", fake), ("NEXUS_GUEST_IMAGE", fake),
                 ("FAKE_VMM_RUNTIME", RUNTIME), ("NEXUS_VM_RESTORE_READY_MS", "3000")):
        monkeypatch.setenv(k, v)
    d = Daemon(state, "--keep-alive", "1")
    snaps = os.path.join(state, "st", "snapshots")
    try:
        assert create(d, "snappy", "def handler(e, c):\n    return 1\n", Tags={"nexus:sandbox": "vm"})[0] == 201
        os.makedirs(os.path.join(snaps, "snappy-0123456789abcdef.tmp-Xy12Z9"))   # left by a crash
        st, _, body = invoke(d, "snappy", b'{"n": 1}')
        r = json.loads(body)
        assert st == 200 and r["restored"] is False and r["event"] == {"n": 1}, body
        dirs = [x for x in os.listdir(snaps) if not x.endswith(".disks")]
        assert len(dirs) == 1 and dirs[0].startswith("snappy-"), dirs   # the crash's leftover is gone too
        snap = os.path.join(snaps, dirs[0])
        assert sorted(os.listdir(snap)) == ["memory", "nexus.json", "vmstate"]
        gen0 = r["generation"]
        assert _metric(d, "nexus_vm_snapshot_takes_total") == 1 and _metric(d, "nexus_vm_fresh_boots_total") == 1

        assert _wait_no_instances(d), "scale to zero"
        st, _, body = invoke(d, "snappy", b'{"n": 2}')
        r = json.loads(body)
        assert st == 200 and r["restored"] is True and r["event"] == {"n": 2}, body
        assert r["generation"] != gen0, "a restore hands over a region of another generation"
        assert _metric(d, "nexus_vm_snapshot_restores_total") == 1
        assert _metric(d, "nexus_vm_snapshot_takes_total") == 1, "a restored instance takes no snapshot"

        assert _wait_no_instances(d)
        with open(os.path.join(snap, "vmstate"), "r+b") as f:   # corrupt it
            f.seek(20)
            f.write(b"XXXX")
        st, _, body = invoke(d, "snappy", b'{"n": 3}')
        r = json.loads(body)
        assert st == 200 and r["restored"] is False and r["event"] == {"n": 3}, body
        assert _metric(d, "nexus_vm_snapshot_fallbacks_total") == 1
        log = open(os.path.join(state, "nexusd.log"), errors="replace").read()
        assert "refused" in log and "vmstate checksum mismatch" in log, log[-2000:]
        assert _metric(d, "nexus_vm_snapshot_takes_total") == 2, "the fresh boot took a new snapshot"

        # A snapshot whose restored guest never re-attaches (the fake hangs when the
        # region's generation did not change: make nexusd's next one equal to it).
        assert _wait_no_instances(d)
        meta_p = os.path.join(snap, "nexus.json")
        meta = json.load(open(meta_p))
        meta["generation"] -= 1          # nexusd hands over generation + 1 == what the snapshot saw
        json.dump(meta, open(meta_p, "w"))
        t0 = time.time()
        st, _, body = invoke(d, "snappy", b'{"n": 4}')
        r = json.loads(body)
        assert st == 200 and r["restored"] is False and r["event"] == {"n": 4}, body
        assert time.time() - t0 >= 2.5, "waited NEXUS_VM_RESTORE_READY_MS for the re-attach"
        assert _metric(d, "nexus_vm_snapshot_fallbacks_total") == 2
        log = open(os.path.join(state, "nexusd.log"), errors="replace").read()
        assert "did not re-attach within 3000 ms" in log, log[-2000:]

        # A configuration change is a new key: fresh boot, new snapshot, the old key's removed.
        old = sorted(os.listdir(snaps))
        assert _wait_no_instances(d)
        st, _, _ = d.req("PUT", "/2015-03-31/functions/snappy/configuration",
                         {"Environment": {"Variables": {"COLOR": "red"}}})
        assert st == 200
        st, _, body = invoke(d, "snappy", b'{"n": 5}')
        assert st == 200 and json.loads(body)["restored"] is False, body
        new = sorted(os.listdir(snaps))
        assert new == [new[0], new[0] + ".disks"] and new[0].startswith("snappy-") and not set(new) & set(old), \
            (old, new)
        assert _metric(d, "nexus_vm_snapshot_takes_total") == 4

        # nexus:snapshot=off: always a fresh boot, nothing stored.
        assert create(d, "nosnap", "def handler(e, c):\n    return 1\n",
                      Tags={"nexus:sandbox": "vm", "nexus:snapshot": "off"})[0] == 201
        st, _, body = invoke(d, "nosnap")
        assert st == 200 and json.loads(body)["restored"] is False
        assert not [x for x in os.listdir(snaps) if x.startswith("nosnap")]

        # Deleting the function removes its snapshot and disk images.
        st, _, _ = d.req("DELETE", "/2015-03-31/functions/snappy")
        assert st == 204
        assert not [x for x in os.listdir(snaps) if x.startswith("snappy-")], os.listdir(snaps)
    finally:
        d.stop()


def _fake_vm_env(state, monkeypatch):
    fake = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_vmm.py")
    log = os.path.join(state, "fake-vmm.jsonl")
    for k, v in (("NEXUS_VMM", fake), ("NEXUS_GUEST_KERNEL", fake), ("NEXUS_GUEST_IMAGE", fake),
                 ("FAKE_VMM_RUNTIME", RUNTIME), ("NEXUS_VM_RESTORE_READY_MS", "3000"), ("FAKE_VMM_LOG", log)):
        monkeypatch.setenv(k, v)
    return log


def _starts(log):
    """What nexusd asked the (fake) monitor for, one dict per start."""
    return [json.loads(x) for x in open(log)] if os.path.exists(log) else []


@needs_vm_runtime
def test_vm_snapshot_memory_verified_once_after_a_restart(state, monkeypatch):
    """Memory integrity policy: a snapshot this nexusd wrote is restored without
    verification; after a restart the first restore of a snapshot found on disk has the
    monitor verify the memory file (NEXUS_VMM_VERIFY_MEMORY=1 = --verify-memory), later
    ones do not (verdict cached); a damaged memory file is then refused, deleted and
    replaced by a fresh boot."""
    log = _fake_vm_env(state, monkeypatch)
    snaps = os.path.join(state, "st", "snapshots")
    d = Daemon(state, "--keep-alive", "1")
    try:
        assert create(d, "verif", "def handler(e, c):\n    return 1\n", Tags={"nexus:sandbox": "vm"})[0] == 201
        st, _, body = invoke(d, "verif", b'{"n": 1}')
        assert st == 200 and json.loads(body)["restored"] is False, body
        assert _wait_no_instances(d)
        st, _, body = invoke(d, "verif", b'{"n": 2}')
        assert st == 200 and json.loads(body)["restored"] is True, body
        starts = _starts(log)
        assert [x["restore"] is not None for x in starts] == [False, True], starts
        assert starts[1]["verify_memory"] is False, "our own snapshot is not verified"
        assert _metric(d, "nexus_vm_snapshot_memory_verified_total") == 0
    finally:
        d.stop()

    d = Daemon(state, "--keep-alive", "1")   # a restart: the snapshot is now "found on disk"
    try:
        for n in (3, 4):
            assert _wait_no_instances(d)
            st, _, body = invoke(d, "verif", json.dumps({"n": n}).encode())
            assert st == 200 and json.loads(body)["restored"] is True, body
        starts = _starts(log)[2:]
        assert [(x["restore"] is not None, x["verify_memory"]) for x in starts] == [(True, True), (True, False)], \
            starts
        assert _metric(d, "nexus_vm_snapshot_memory_verified_total") == 1
        assert _metric(d, "nexus_vm_snapshot_fallbacks_total") == 0
    finally:
        d.stop()

    snap = [os.path.join(snaps, x) for x in os.listdir(snaps) if not x.endswith(".disks")][0]
    with open(os.path.join(snap, "memory"), "r+b") as f:   # damage the memory file
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0x40]))
    d = Daemon(state, "--keep-alive", "1")
    try:
        st, _, body = invoke(d, "verif", b'{"n": 5}')
        assert st == 200 and json.loads(body)["restored"] is False, body
        starts = _starts(log)[4:]
        assert [(x["restore"] is not None, x["verify_memory"]) for x in starts] == [(True, True), (False, False)], \
            starts
        assert _metric(d, "nexus_vm_snapshot_fallbacks_total") == 1
        assert _metric(d, "nexus_vm_snapshot_memory_verified_total") == 0
        text = open(os.path.join(state, "nexusd.log"), errors="replace").read()
        assert "memory checksum mismatch" in text and "/memory" in text, text[-2000:]
        assert _metric(d, "nexus_vm_snapshot_takes_total") == 1, "the fresh boot took a new snapshot"
    finally:
        d.stop()


@needs_vm_runtime
def test_vm_snapshot_working_set(state, monkeypatch):
    """The first restored instance of a snapshot records its first invocation's working
    set (ws-save after INVOKE_DONE, stored as <snapshot>/ws); later restores pass it as
    --ws; a ws file the monitor cannot use is dropped (fresh boot, recorded anew);
    NEXUS_VM_SNAPSHOT_WS=off turns it off; all counted in /metrics."""
    log = _fake_vm_env(state, monkeypatch)
    snaps = os.path.join(state, "st", "snapshots")
    d = Daemon(state, "--keep-alive", "1")
    try:
        assert create(d, "wsf", "def handler(e, c):\n    return 1\n", Tags={"nexus:sandbox": "vm"})[0] == 201
        st, _, body = invoke(d, "wsf", b'{"n": 1}')
        assert st == 200 and json.loads(body)["restored"] is False, body
        snap = [os.path.join(snaps, x) for x in os.listdir(snaps) if not x.endswith(".disks")][0]
        ws = os.path.join(snap, "ws")
        assert not os.path.exists(ws), "a fresh boot records no working set"
        assert _wait_no_instances(d)
        st, _, body = invoke(d, "wsf", b'{"n": 2}')
        assert st == 200 and json.loads(body)["restored"] is True, body
        assert _wait_for(lambda: _metric(d, "nexus_vm_snapshot_ws_saves_total") == 1), "ws-save after INVOKE_DONE"
        assert open(ws).read() == "0 1\n16 3\n"
        assert not [x for x in os.listdir(snap) if ".tmp-" in x], os.listdir(snap)
        assert _metric(d, "nexus_vm_snapshot_ws_restores_total") == 0
        assert _wait_no_instances(d)
        st, _, body = invoke(d, "wsf", b'{"n": 3}')
        assert st == 200 and json.loads(body)["restored"] is True, body
        starts = _starts(log)
        assert [x["ws"] for x in starts] == [None, None, ws], starts
        assert _metric(d, "nexus_vm_snapshot_ws_restores_total") == 1
        assert _metric(d, "nexus_vm_snapshot_ws_saves_total") == 1, "recorded once"
        text = open(os.path.join(state, "nexusd.log"), errors="replace").read()
        assert "working set of the first invocation saved" in text and "with its working set (--ws)" in text

        # A ws file the monitor refuses: that start boots fresh, the file is dropped,
        # the next restore records it again.
        assert _wait_no_instances(d)
        open(ws, "w").write("garbage\n")
        st, _, body = invoke(d, "wsf", b'{"n": 4}')
        assert st == 200 and json.loads(body)["restored"] is False, body
        assert not os.path.exists(ws)
        assert os.path.isdir(snap), "the snapshot itself stays"
        assert _wait_no_instances(d)
        st, _, body = invoke(d, "wsf", b'{"n": 5}')
        assert st == 200 and json.loads(body)["restored"] is True, body
        assert _wait_for(lambda: _metric(d, "nexus_vm_snapshot_ws_saves_total") == 2)
    finally:
        d.stop()

    monkeypatch.setenv("NEXUS_VM_SNAPSHOT_WS", "off")
    d = Daemon(state, "--keep-alive", "1")
    try:
        st, _, body = invoke(d, "wsf", b'{"n": 6}')
        assert st == 200 and json.loads(body)["restored"] is True, body
        assert _starts(log)[-1]["ws"] is None and os.path.exists(ws)
        time.sleep(0.5)
        assert _metric(d, "nexus_vm_snapshot_ws_saves_total") == 0
        assert _metric(d, "nexus_vm_snapshot_ws_restores_total") == 0
    finally:
        d.stop()


def test_unknown_route_and_function(nd):
    st, h, body = nd.req("GET", "/nope")
    assert st == 404 and "x-amzn-RequestId" in h
    st, h, body = invoke(nd, "ghost")
    assert st == 404 and h["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert json.loads(body)["Type"] == "User"


@needs_guest
def test_functions_survive_a_restart(state):
    d = Daemon(state)
    assert create(d, "keep", "def handler(e, c):\n    return 'kept'\n", MemorySize=256)[0] == 201
    assert d.stop() == 0
    d = Daemon(state)
    try:
        st, _, body = d.req("GET", "/2015-03-31/functions/keep")
        assert st == 200 and json.loads(body)["Configuration"]["MemorySize"] == 256
        st, _, body = invoke(d, "keep")
        assert (st, json.loads(body)) == (200, "kept")
    finally:
        assert d.stop() == 0


@needs_guest
def test_throttling_beyond_instances_and_queue(nd):
    # max 2 instances, queue depth 1: of 6 concurrent slow requests some must get 429.
    create(nd, "slow", "import time\ndef handler(e, c):\n    time.sleep(1.5)\n    return 1\n", Timeout=10)
    results = []
    threads = [threading.Thread(target=lambda: results.append(invoke(nd, "slow"))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r[0] for r in results)
    assert codes.count(200) >= 3 and 429 in codes, codes
    for st, h, body in results:
        if st == 429:
            assert h["x-amzn-ErrorType"] == "TooManyRequestsException"


@needs_guest
def test_scale_to_zero(state):
    d = Daemon(state, "--keep-alive", "1")
    try:
        create(d, "brief", "def handler(e, c):\n    return 2\n")
        assert invoke(d, "brief")[0] == 200
        st = json.loads(d.req("GET", "/nexus/v1/status")[2])
        assert [i["state"] for i in st["instances"]] == ["idle"] and st["instances"][0]["pid"] > 0
        time.sleep(3)
        st = json.loads(d.req("GET", "/nexus/v1/status")[2])
        assert st["instances"] == []
        assert invoke(d, "brief")[0] == 200    # cold again
        metrics = d.req("GET", "/metrics")[2].decode()
        assert "nexus_cold_starts_total 2" in metrics
    finally:
        d.stop()


@needs_guest
def test_event_update_config_logs_and_metrics(nd):
    create(nd, "ev", "import os\ndef handler(e, c):\n    print('seen', e, os.environ.get('COLOR'))\n    return 3\n")
    st, _, _ = invoke(nd, "ev", b'{"k": 1}', {"X-Amz-Invocation-Type": "Event"})
    assert st == 202
    st, _, _ = invoke(nd, "ev", b'{}', {"X-Amz-Invocation-Type": "DryRun"})
    assert st == 204
    st, _, body = nd.req("PUT", "/2015-03-31/functions/ev/configuration",
                         {"Environment": {"Variables": {"COLOR": "blue"}}, "Timeout": 7})
    assert st == 200 and json.loads(body)["Timeout"] == 7
    st, _, body = invoke(nd, "ev", b'{"k": 2}')
    assert (st, body) == (200, b"3")
    deadline = time.time() + 10
    while time.time() < deadline:
        logs = nd.req("GET", "/nexus/v1/functions/ev/logs")[2].decode()
        if "seen {'k': 1}" in logs and "seen {'k': 2} blue" in logs:
            break
        time.sleep(0.2)
    # The Event may run before or after the update reached its instance.
    assert ("seen {'k': 1} None" in logs or "seen {'k': 1} blue" in logs) and "seen {'k': 2} blue" in logs, logs
    assert logs.count("START RequestId") == 2 and logs.count("REPORT RequestId") == 2
    tail = nd.req("GET", "/nexus/v1/functions/ev/logs?tail=1")[2].decode()
    assert tail.startswith("REPORT RequestId") and tail.count("\n") <= 1
    metrics = nd.req("GET", "/metrics")[2].decode()
    assert 'nexus_invocations_total{function="ev",result="success"} 2' in metrics
    assert 'nexus_invocation_duration_seconds_count{function="ev"} 2' in metrics
    st, _, _ = nd.req("DELETE", "/2015-03-31/functions/ev")
    assert st == 204
    assert nd.req("GET", "/2015-03-31/functions/ev")[0] == 404


@needs_guest
def test_sigterm_answers_running_invocations(nd):
    create(nd, "long", "import time\ndef handler(e, c):\n    time.sleep(20)\n", Timeout=30)
    out = {}
    t = threading.Thread(target=lambda: out.update(r=invoke(nd, "long")))
    t.start()
    deadline = time.time() + 10
    while time.time() < deadline:
        st = json.loads(nd.req("GET", "/nexus/v1/status")[2])
        if any(i["state"] == "busy" for i in st["instances"]):
            break
        time.sleep(0.1)
    t0 = time.time()
    assert nd.stop() == 0
    t.join(10)
    assert time.time() - t0 < 10
    st, h, body = out["r"]
    assert st >= 500 and "shutting down" in body.decode()


@needs_guest
def test_delete_during_invocation_then_recreate(nd):
    create(nd, "gone", "import time\ndef handler(e, c):\n    time.sleep(e.get('s', 0))\n    return 'v1'\n", Timeout=30)
    out = {}
    t = threading.Thread(target=lambda: out.update(r=invoke(nd, "gone", b'{"s": 20}')))
    t.start()
    deadline = time.time() + 10
    while time.time() < deadline:
        st = json.loads(nd.req("GET", "/nexus/v1/status")[2])
        if any(i["state"] == "busy" for i in st["instances"]):
            break
        time.sleep(0.1)
    assert nd.req("DELETE", "/2015-03-31/functions/gone")[0] == 204
    assert create(nd, "gone", "def handler(e, c):\n    return 'v2'\n")[0] == 201
    t.join(10)
    st, h, body = out["r"]
    assert st == 404 and h["x-amzn-ErrorType"] == "ResourceNotFoundException", (st, body)
    st, _, body = invoke(nd, "gone")
    assert (st, json.loads(body)) == (200, "v2")


@needs_guest
def test_chaos_kills_updates_recreates(state):
    """Invocations while instances are SIGKILLed, code is updated and a function is
    deleted and recreated: every request gets an answer, nexusd stays consistent
    (its status self-check logs "BUG:" on drift) and works afterwards."""
    import random
    d = Daemon(state, "--keep-alive", "5")
    try:
        src = "import time\ndef handler(e, c):\n    time.sleep(e.get('s', 0))\n    return e.get('i')\n"
        for n in ("k1", "k2"):
            assert create(d, n, src, Timeout=2, Tags={"nexus:max-instances": "3"})[0] == 201
        stop = time.time() + 10
        answers = []

        def invoker():
            while time.time() < stop:
                s = random.choice([0, 0, 0.05, 0.3, 3])
                try:
                    st, _, _ = invoke(d, random.choice(["k1", "k2"]), json.dumps({"i": 1, "s": s}).encode())
                except Exception as e:  # a hang or a dropped connection is a failure, say which
                    st = f"{type(e).__name__}: {e}"
                answers.append(st)

        def chaos():
            while time.time() < stop:
                st = json.loads(d.req("GET", "/nexus/v1/status")[2])
                pids = [i["pid"] for i in st["instances"] if i["pid"]]
                if pids:
                    try:
                        os.kill(random.choice(pids), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                d.req("PUT", "/2015-03-31/functions/k1/code", {"ZipFile": zip_of({"app.py": src + f"# {random.random()}\n"})})
                d.req("DELETE", "/2015-03-31/functions/k2")
                create(d, "k2", src, Timeout=2, Tags={"nexus:max-instances": "3"})
                time.sleep(0.3)

        ts = [threading.Thread(target=invoker) for _ in range(8)] + [threading.Thread(target=chaos)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert answers and set(answers) <= {200, 404}, set(answers)
        d.req("GET", "/nexus/v1/status")
        for n in ("k1", "k2"):
            st, _, body = invoke(d, n, b'{"i": 7}')
            assert (st, json.loads(body)) == (200, 7)
    finally:
        d.stop()
    log = open(os.path.join(state, "nexusd.log"), errors="replace").read()
    assert "BUG:" not in log, [l for l in log.splitlines() if "BUG:" in l][:5]


def test_tags_api(nd):
    assert create(nd, "tagged", "def handler(e, c):\n    return 1\n", Tags={"a": "1"})[0] == 201
    arn = "arn:aws:lambda:us-east-1:000000000000:function:tagged"
    q = urllib.request.quote(arn, safe="")
    assert nd.req("POST", f"/2017-03-31/tags/{q}", {"Tags": {"nexus:buckets": "bkt-one,bkt-two", "b": "2"}})[0] == 204
    assert json.loads(nd.req("GET", f"/2017-03-31/tags/{q}")[2])["Tags"] == {
        "a": "1", "b": "2", "nexus:buckets": "bkt-one,bkt-two"}
    st = json.loads(nd.req("GET", "/nexus/v1/status")[2])
    assert [f["buckets"] for f in st["functions"] if f["name"] == "tagged"] == [["bkt-one", "bkt-two"]]
    assert nd.req("DELETE", f"/2017-03-31/tags/{q}?tagKeys=a&tagKeys=nexus%3Abuckets")[0] == 204
    assert json.loads(nd.req("GET", f"/2017-03-31/tags/{q}")[2])["Tags"] == {"b": "2"}
    st, h, _ = nd.req("POST", f"/2017-03-31/tags/{q}", {"Tags": {"nexus:mode": "weird"}})
    assert st == 400 and h["x-amzn-ErrorType"] == "InvalidParameterValueException"
    assert nd.req("GET", "/2017-03-31/tags/nosuch")[0] == 404
