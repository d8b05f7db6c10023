"""nexusd --init-timeout (env NEXUS_INIT_TIMEOUT): an instance that is not READY in
time is stopped and the invocation fails with the reason; one within it serves."""
import io
import json
import shutil
import tempfile
import zipfile

import pytest

from conftest import Node, create_function, delete_functions, invoke, unique


@pytest.fixture(scope="module")
def short_init_node():
    n = Node(tempfile.mkdtemp(prefix="nexus-it-init-"))
    n.cli("up", "--", "--init-timeout", "3", timeout=180)
    n.status = json.loads(n.cli("status", "--json").stdout)
    yield n
    n.cli("down", check=False)
    shutil.rmtree(n.home, ignore_errors=True)


def provided_zip(script):
    """A runtime "provided" function whose bootstrap is a shell script."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o100755 << 16
        z.writestr(info, script)
    return buf.getvalue()


def test_init_timeout_is_configurable(short_init_node):
    lam = short_init_node.boto("lambda")
    slow, fine = unique("init"), unique("init")
    try:
        # A runtime that never says READY (the limit runs from the sandbox's start to READY):
        # stopped after 3 s, the caller told why.
        lam.create_function(FunctionName=slow, Runtime="provided.al2", Role="arn:aws:iam::000000000000:role/nexus",
                            Handler="bootstrap", Code={"ZipFile": provided_zip("#!/bin/sh\nexec sleep 60\n")},
                            Timeout=20, MemorySize=128)
        res, err, _ = invoke(lam, slow, {})
        assert err is not None, res
        assert "not ready within 3 s" in json.dumps(res), res
        # An import well inside it serves.
        create_function(lam, fine, "import time\ntime.sleep(0.5)\ndef handler(e, c):\n    return 2\n", timeout=20)
        res, err, _ = invoke(lam, fine, {})
        assert err is None and res == 2, res
    finally:
        delete_functions(lam, [slow, fine])


def test_init_timeout_rejects_bad_values():
    n = Node(tempfile.mkdtemp(prefix="nexus-it-init-bad-"))
    try:
        p = n.cli("up", "--", "--init-timeout", "0", check=False, timeout=120)
        assert p.returncode != 0
        log = open(f"{n.home}/logs/nexusd.log").read() if p.returncode else ""
        assert "--init-timeout wants an integer in 1..3600" in p.stderr + p.stdout + log
    finally:
        n.cli("down", check=False)
        shutil.rmtree(n.home, ignore_errors=True)
