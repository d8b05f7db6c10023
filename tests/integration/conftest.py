"""Fixtures for the integration suite.

One node (nexusd + the local signature-checking S3 server) is started per test
session with `nexus up` in a private NEXUS_HOME on free ports, exactly as a user
starts it, and stopped with `nexus down` at the end.  Tests talk to it with the
real boto3 (Debian's python3-boto3) and awscli, as existing clients would.
"""
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
import zipfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD", "build")
NEXUS = os.path.join(ROOT, BUILD, "bin", "nexus")
FUNCTIONS = os.path.join(ROOT, "functions")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """A running node and clients for it."""

    def __init__(self, home):
        self.home = home
        self.env = dict(os.environ, NEXUS_HOME=home, NEXUS_PORT=str(free_port()),
                        NEXUS_S3_PORT=str(free_port()))
        for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            self.env.pop(k, None)
        # Short keep-alive so scale-to-zero is observable; tests that need it say so.
        self.env.setdefault("NEXUS_KEEP_ALIVE", "30")
        self.status = None

    def cli(self, *args, check=True, timeout=120, input=None):
        p = subprocess.run([NEXUS, *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise AssertionError(f"nexus {' '.join(args)} failed ({p.returncode}):\n"
                                 f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def up(self):
        self.cli("up", timeout=180)
        self.status = json.loads(self.cli("status", "--json").stdout)

    @property
    def ingress(self):
        return self.status["ingress"].rstrip("/")

    def boto(self, service):
        import boto3
        from botocore.config import Config
        s3 = self.status["s3"]
        session = boto3.session.Session(aws_access_key_id=s3["access_key"],
                                        aws_secret_access_key=s3["secret_key"],
                                        region_name=s3["region"])
        cfg = Config(retries={"max_attempts": 0}, read_timeout=120, connect_timeout=10,
                     max_pool_connections=64)
        if service == "s3":
            return session.client("s3", endpoint_url=s3["endpoint"],
                                  config=cfg.merge(Config(s3={"addressing_style": "path"})))
        return session.client(service, endpoint_url=self.ingress, config=cfg)

    def aws_env(self):
        s3 = self.status["s3"]
        return dict(self.env, AWS_ACCESS_KEY_ID=s3["access_key"],
                    AWS_SECRET_ACCESS_KEY=s3["secret_key"], AWS_DEFAULT_REGION=s3["region"],
                    AWS_PAGER="")


@pytest.fixture(scope="session")
def node():
    if not os.access(NEXUS, os.X_OK):
        pytest.fail(f"{NEXUS} is not built: run make all")
    home = tempfile.mkdtemp(prefix="nexus-it-")
    n = Node(home)
    try:
        n.up()
    except Exception:
        for f in ("nexusd.log", "s3.log"):
            p = os.path.join(home, "logs", f)
            if os.path.exists(p):
                print(f"---- {p}\n" + open(p).read()[-4000:])
        raise
    yield n
    stop_node(n)


def stop_node(n):
    """`nexus down` for a node a fixture started, then check its log and remove its home."""
    n.cli("down", check=False)
    logs = os.path.join(n.home, "logs", "nexusd.log")
    if os.path.exists(logs):
        text = open(logs).read()
        # nexusd must never have crashed or reported sanitizer errors during the session.
        assert "AddressSanitizer" not in text and "runtime error:" not in text, text[-4000:]
    shutil.rmtree(n.home, ignore_errors=True)


@pytest.fixture(scope="session")
def s3(node):
    return node.boto("s3")


@pytest.fixture(scope="session")
def lam(node):
    return node.boto("lambda")


def zip_dir(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for base, _, files in os.walk(path):
            for f in files:
                full = os.path.join(base, f)
                z.write(full, os.path.relpath(full, path))
    return buf.getvalue()


def zip_code(source, name="app.py"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, source)
    return buf.getvalue()


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def deploy(lam):
    """deploy(code_or_dir, buckets=(), timeout=3, memory=128, mode='nexus', **tags) -> name"""
    created = []

    def _deploy(code, name=None, handler="app.handler", buckets=(), timeout=3, memory=128,
                mode="nexus", max_instances=None, env=None):
        name = name or unique("fn")
        create_function(lam, name, code, handler=handler, buckets=buckets, timeout=timeout, memory=memory,
                        mode=mode, max_instances=max_instances, env=env)
        created.append(name)
        return name

    yield _deploy
    delete_functions(lam, created)


def create_function(lam, name, code, handler="app.handler", buckets=(), timeout=3, memory=128,
                    mode="nexus", max_instances=None, env=None, tags=None):
    """CreateFunction of a python3.11 function from a source string or a directory; `tags` adds
    tags to the nexus:mode/buckets/max-instances ones the other arguments make."""
    zipped = zip_dir(code) if os.path.isdir(code) else zip_code(code)
    all_tags = {"nexus:mode": mode, **(tags or {})}
    if buckets:
        all_tags["nexus:buckets"] = ",".join(buckets)
    if max_instances:
        all_tags["nexus:max-instances"] = str(max_instances)
    kw = {}
    if env:
        kw["Environment"] = {"Variables": env}
    lam.create_function(FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::000000000000:role/nexus",
                        Handler=handler, Code={"ZipFile": zipped}, Timeout=timeout,
                        MemorySize=memory, Tags=all_tags, **kw)


def delete_functions(lam, names):
    """Fixture teardown: delete what a test deployed, whatever state it was left in."""
    for name in names:
        try:
            lam.delete_function(FunctionName=name)
        except Exception:
            pass


def invoke(lam, name, payload=None):
    """Invoke and return (result_object, function_error_or_None, raw_response)."""
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload if payload is not None else {}).encode())
    body = r["Payload"].read()
    return json.loads(body) if body else None, r.get("FunctionError"), r


@pytest.fixture
def bucket(s3):
    name = unique("bkt")
    s3.create_bucket(Bucket=name)
    yield name
    try:
        objs = s3.list_objects_v2(Bucket=name).get("Contents", [])
        for o in objs:
            s3.delete_object(Bucket=name, Key=o["Key"])
        s3.delete_bucket(Bucket=name)
    except Exception:
        pass


# ---- results for tests/run-all.sh: passed/failed/skipped plus every skip reason
def pytest_terminal_summary(terminalreporter):
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    skipped = stats.get("skipped", [])
    out = os.environ.get("NEXUS_TEST_RESULTS", os.path.join(ROOT, BUILD, "test-results"))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "test-integration.counts"), "w") as f:
        f.write(f"passed={passed} failed={failed} skipped={len(skipped)}\n")
        for rep in skipped:
            reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
            f.write(f"skip: {rep.nodeid}: {reason}\n")
