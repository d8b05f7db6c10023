"""Fixtures for the guest runtime's own tests.

The runtime under test is the installed tree $BUILD/runtime (make runtime),
exactly what a sandbox mounts at /opt/nexus.  In-process tests import the
shim (so `import boto3` here is the shim) and attach the channel to a
FakeHost thread; runtime tests run bootstrap.py as a child process attached
to its own FakeHost.
"""
import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
RUNTIME = os.path.join(ROOT, os.environ.get("BUILD", "build"), "runtime")
PYDIR = os.path.join(RUNTIME, "python")
FUNCTIONS = os.path.join(ROOT, "functions")

if not os.path.exists(os.path.join(RUNTIME, "lib", "libnexus.so")):
    raise SystemExit(f"{RUNTIME}/lib/libnexus.so is missing: run `make runtime` first")

# The shim first, as bootstrap.py arranges it in a sandbox.
sys.path[:0] = [os.path.join(PYDIR, "shim"), PYDIR, HERE]

import fakehost  # noqa: E402
from nexusrt import channel  # noqa: E402

_HOST = None


@pytest.fixture(scope="session")
def session_host():
    global _HOST
    h = fakehost.FakeHost(region_size=32 << 20, buckets=("test-bucket", "other-bucket"))
    channel.attach(fds=h.fds)
    _HOST = h
    yield h
    h.close()


@pytest.fixture
def host(session_host):
    """The in-process host, with an empty S3 and no recorded violations."""
    h = session_host
    for b in h.s3.buckets.values():
        b.clear()
    h.s3.buckets.pop("ghost-bucket", None)
    h.allowed = {"test-bucket", "other-bucket", "ghost-bucket"}
    h.requests.clear()
    h.violations.clear()
    h.max_list = 1000
    yield h
    assert h.violations == [], h.violations


def host_buffers_released(h, timeout=2.0):
    """True once every host buffer handed to the guest came back."""
    import gc
    end = time.time() + timeout
    while time.time() < end:
        gc.collect()
        with h._mu:
            if not h.alloc.live:
                return True
        time.sleep(0.01)
    return False


class Runtime:
    """bootstrap.py in a child process, attached to its own FakeHost."""

    def __init__(self, tmp_path, code=None, task_dir=None, handler="app.handler", mode="nexus", env=None,
                 buckets=("test-bucket",)):
        self.task = task_dir or str(tmp_path / "task")
        if code is not None:
            os.makedirs(self.task, exist_ok=True)
            with open(os.path.join(self.task, "app.py"), "w") as f:
                f.write(code)
        self.host = fakehost.FakeHost(buckets=buckets, config={
            "function_name": "test-fn", "handler": handler, "memory_mb": 256, "timeout_s": 3,
            "mode": mode, "version": "$LATEST"})
        self.log_path = str(tmp_path / "runtime.log")
        self.log = open(self.log_path, "wb")
        e = {"PATH": "/usr/bin:/bin", "NEXUS_MODE": mode, "NEXUS_TASK_ROOT": self.task, "HOME": str(tmp_path)}
        e.update(self.host.env())
        e.update(env or {})
        self.proc = subprocess.Popen(["/usr/bin/python3", "-u", os.path.join(PYDIR, "bootstrap.py")],
                                     env=e, pass_fds=self.host.fds, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=str(tmp_path))

    def invoke(self, event, **kw):
        import json
        status, payload = self.host.invoke(event, **kw)
        return status, json.loads(payload) if payload else None

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.host.close()
        self.log.close()


@pytest.fixture
def runtime(tmp_path):
    started = []

    def start(*args, **kw):
        r = Runtime(tmp_path, *args, **kw)
        started.append(r)
        return r
    yield start
    for r in started:
        r.close()
