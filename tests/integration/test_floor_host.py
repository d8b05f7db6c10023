"""The "host" driver (nexusd/sandbox_host.c): no sandbox, the benchmark floor.

It is offered only by a nexusd started with --allow-unsandboxed, only in nexus mode,
and must then behave like the process sandbox (same outputs, same storage calls
through the channel) while really being a plain host process."""
import hashlib
import json
import shutil
import tempfile

import pytest

from conftest import Node, create_function, delete_functions, invoke, unique

CODE = """
import hashlib, os, boto3
s3 = boto3.client("s3")
def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    body = s3.get_object(Bucket=event["bucket"], Key=event["key"])["Body"].read()
    s3.put_object(Bucket=event["bucket"], Key=event["key"] + ".out", Body=body[::-1])
    return {"len": len(body), "sha": hashlib.sha256(body).hexdigest(), "pid": os.getpid(),
            "task_root": os.environ.get("LAMBDA_TASK_ROOT")}
"""


@pytest.fixture(scope="module")
def floor_node():
    n = Node(tempfile.mkdtemp(prefix="nexus-it-floor-"))
    n.cli("up", "--", "--allow-unsandboxed", timeout=180)
    n.status = json.loads(n.cli("status", "--json").stdout)
    yield n
    n.cli("down", check=False)
    log = open(f"{n.home}/logs/nexusd.log").read()
    shutil.rmtree(n.home, ignore_errors=True)
    assert "sandbox driver host: ENABLED" in log


def pid_namespaces(pid):
    """How many pid namespaces the process is in (1: the host's only)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("NSpid:"):
            return len(line.split()) - 1
    raise AssertionError(f"no NSpid for {pid}")


def test_host_driver_refused_without_the_flag(lam):
    with pytest.raises(Exception) as e:
        create_function(lam, unique("fl"), CODE, tags={"nexus:sandbox": "host"})
    assert "--allow-unsandboxed" in str(e.value)


def test_host_driver_nexus_mode_only(floor_node):
    lam = floor_node.boto("lambda")
    with pytest.raises(Exception) as e:
        create_function(lam, unique("fl"), CODE, mode="baseline", tags={"nexus:sandbox": "host"})
    assert "nexus mode only" in str(e.value)


def test_host_driver_same_results_as_process_sandbox(floor_node):
    lam, s3 = floor_node.boto("lambda"), floor_node.boto("s3")
    bucket = unique("bkt")
    s3.create_bucket(Bucket=bucket)
    data = bytes(range(256)) * 4096 + b"tail"   # 1 MiB + 4 bytes
    s3.put_object(Bucket=bucket, Key="in", Body=data)
    names = {d: unique("fl") for d in ("host", "process")}
    try:
        for driver, name in names.items():
            create_function(lam, name, CODE, buckets=[bucket], timeout=30, tags={"nexus:sandbox": driver})
        out = {}
        for driver, name in names.items():
            res, err, _ = invoke(lam, name, {"bucket": bucket, "key": "in"})
            assert err is None, res
            assert res["len"] == len(data) and res["sha"] == hashlib.sha256(data).hexdigest(), res
            assert s3.get_object(Bucket=bucket, Key="in.out")["Body"].read() == data[::-1]
            fail, ferr, _ = invoke(lam, name, {"fail": True})
            assert ferr and fail["errorType"] == "ValueError" and fail["errorMessage"] == "asked to fail", fail
            out[driver] = res
        # Really unsandboxed: the host process is in the host's pid namespace only, and sees
        # its code at the host path; the sandboxed one is in its own and sees /var/task.
        assert pid_namespaces(out["host"]["pid"]) == 1
        assert out["host"]["task_root"] != "/var/task" and out["host"]["task_root"].startswith("/")
        assert out["process"]["task_root"] == "/var/task"
        # A bucket the function was not given stays refused: the channel's checks still apply.
        s3.create_bucket(Bucket=bucket + "-x")
        res, err, _ = invoke(lam, names["host"], {"bucket": bucket + "-x", "key": "in"})
        assert err is not None, res
    finally:
        delete_functions(lam, names.values())
        for b in (bucket, bucket + "-x"):
            for o in s3.list_objects_v2(Bucket=b).get("Contents", []):
                s3.delete_object(Bucket=b, Key=o["Key"])
            s3.delete_bucket(Bucket=b)
