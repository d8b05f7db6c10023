"""The Lambda REST API as existing clients (boto3's lambda client, awscli) use it."""
import json
import os
import subprocess
import tempfile
import time
import urllib.request
import urllib.error

import pytest
from botocore.exceptions import ClientError

from conftest import invoke, unique, zip_code

ECHO = """
def handler(event, context):
    return {"echo": event, "fn": context.function_name,
            "mem": context.memory_limit_in_mb,
            "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 3000,
            "rid": context.aws_request_id}
"""


def test_create_get_list_delete(lam, deploy):
    name = deploy(ECHO, memory=256)
    fn = lam.get_function(FunctionName=name)
    assert fn["Configuration"]["FunctionName"] == name
    assert fn["Configuration"]["Handler"] == "app.handler"
    assert fn["Configuration"]["MemorySize"] == 256
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert name in names
    lam.delete_function(FunctionName=name)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name)


def test_create_duplicate_is_conflict(lam, deploy):
    name = deploy(ECHO)
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::0:role/x",
                            Handler="app.handler", Code={"ZipFile": zip_code(ECHO)})
    assert e.value.response["Error"]["Code"] == "ResourceConflictException"


def test_invoke_returns_handler_json_and_context(lam, deploy):
    name = deploy(ECHO, memory=192)
    out, err, r = invoke(lam, name, {"a": [1, 2, {"b": "ü"}]})
    assert err is None
    assert r["StatusCode"] == 200
    assert out["echo"] == {"a": [1, 2, {"b": "ü"}]}
    assert out["fn"] == name and out["mem"] == 192 and out["remaining_ok"] is True
    assert len(out["rid"]) >= 16


ENV = """
import os
def handler(event, context):
    out = {k: os.environ.get(k) for k in ("MY_VAR", "GLIBC_TUNABLES", "AWS_LAMBDA_FUNCTION_NAME")}
    raw = open("/proc/self/environ", "rb").read().split(b"\\0")
    out["tunables_count"] = sum(1 for e in raw if e.startswith(b"GLIBC_TUNABLES="))
    return out
"""


def test_environment_user_variables_and_malloc_defaults(lam, deploy):
    """A function's variables arrive; nexusd's malloc tuning is a default it can replace, never a second
    GLIBC_TUNABLES (glibc would apply both, the last one winning)."""
    name = deploy(ENV, env={"MY_VAR": "x y=z"})
    out, err, _ = invoke(lam, name)
    assert err is None, out
    assert out["MY_VAR"] == "x y=z" and out["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert "glibc.malloc.trim_threshold=" in out["GLIBC_TUNABLES"] and out["tunables_count"] == 1
    own = deploy(ENV, env={"GLIBC_TUNABLES": "glibc.malloc.arena_max=1"})
    out, err, _ = invoke(lam, own)
    assert err is None, out
    assert out["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=1" and out["tunables_count"] == 1


def test_unknown_function_is_404(lam):
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.invoke(FunctionName="no-such-function-xyz", Payload=b"{}")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_payload_over_6mb_is_413(lam, deploy):
    name = deploy(ECHO)
    big = json.dumps({"x": "a" * (6 * 1024 * 1024 + 10)}).encode()
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=big)
    assert e.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_invalid_json_payload_is_rejected(node, deploy):
    name = deploy(ECHO)
    req = urllib.request.Request(f"{node.ingress}/2015-03-31/functions/{name}/invocations",
                                 data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 400
    assert "InvalidRequestContentException" in e.value.headers.get("x-amzn-ErrorType", "") + e.value.read().decode()


def test_handler_exception_is_unhandled_error(lam, deploy):
    name = deploy("""
def handler(event, context):
    raise ValueError("bad input: " + str(event.get("n")))
""")
    out, err, r = invoke(lam, name, {"n": 7})
    assert r["StatusCode"] == 200
    assert err == "Unhandled"
    assert out["errorType"] == "ValueError"
    assert out["errorMessage"] == "bad input: 7"
    assert isinstance(out["stackTrace"], list) and any("app.py" in line for line in out["stackTrace"])


def test_import_error_is_reported(lam, deploy):
    name = deploy("import no_such_module_anywhere\ndef handler(e, c):\n    return 1\n")
    out, err, _ = invoke(lam, name)
    assert err == "Unhandled"
    assert out["errorType"] == "Runtime.ImportModuleError"
    assert "no_such_module_anywhere" in out["errorMessage"]


def test_timeout(lam, deploy):
    name = deploy("import time\ndef handler(e, c):\n    time.sleep(30)\n", timeout=1)
    out, err, _ = invoke(lam, name)
    assert err == "Unhandled"
    assert out["errorType"] == "Sandbox.Timedout"
    assert "timed out after 1.00 seconds" in out["errorMessage"]
    # The instance was replaced: the function still works afterwards with a fast handler.
    lam.update_function_code(FunctionName=name, ZipFile=zip_code("def handler(e, c):\n    return 'ok'\n"))
    out, err, _ = invoke(lam, name)
    assert (out, err) == ("ok", None)


def test_awscli_create_and_invoke(node, tmp_path):
    env = node.aws_env()
    name = unique("cli")
    z = tmp_path / "f.zip"
    z.write_bytes(zip_code("def handler(e, c):\n    return {'sum': e['a'] + e['b']}\n"))
    # Debian's awscli (v2), not whatever `aws` is first on PATH.
    aws = ["/usr/bin/aws", "--endpoint-url", node.ingress, "lambda"]
    p = subprocess.run(aws + ["create-function", "--function-name", name, "--runtime", "python3.11",
                              "--handler", "app.handler", "--role", "arn:aws:iam::000000000000:role/x",
                              "--zip-file", f"fileb://{z}"], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["FunctionName"] == name
    out = tmp_path / "out.json"
    p = subprocess.run(aws + ["invoke", "--function-name", name, "--cli-binary-format", "raw-in-base64-out",
                              "--payload", '{"a": 2, "b": 40}', str(out)], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["StatusCode"] == 200
    assert json.loads(out.read_text()) == {"sum": 42}
    p = subprocess.run(aws + ["delete-function", "--function-name", name], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_concurrent_invocations(lam, deploy):
    """50 concurrent invocations all succeed and each gets its own answer."""
    from concurrent.futures import ThreadPoolExecutor
    name = deploy("import time\ndef handler(e, c):\n    time.sleep(0.05)\n    return e['i'] * 2\n",
                  max_instances=8, timeout=30)
    with ThreadPoolExecutor(50) as ex:
        results = list(ex.map(lambda i: invoke(lam, name, {"i": i})[:2], range(50)))
    assert results == [(i * 2, None) for i in range(50)]


def test_health_and_metrics(node, lam, deploy):
    name = deploy(ECHO)
    invoke(lam, name, {"x": 1})
    with urllib.request.urlopen(f"{node.ingress}/health", timeout=10) as r:
        assert r.status == 200
    with urllib.request.urlopen(f"{node.ingress}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert r.headers["Content-Type"].startswith("text/plain")
    for metric in ("nexus_invocations_total", "nexus_invocation_duration_seconds_bucket",
                   "nexus_instances", "nexus_storage_operations_total", "nexus_storage_bytes_total"):
        assert metric in text, metric
    assert f'nexus_invocations_total{{function="{name}",result="success"}} 1' in text


def test_logs_capture_print(node, lam, deploy):
    name = deploy("import logging\ndef handler(e, c):\n    print('hello-from-print', e['k'])\n"
                  "    logging.getLogger().warning('hello-from-logging')\n    return 1\n")
    invoke(lam, name, {"k": "v42"})
    logs = node.cli("logs", name).stdout
    assert "hello-from-print v42" in logs
    assert "hello-from-logging" in logs
    assert "START RequestId" in logs and "END RequestId" in logs


def test_many_idle_connections_do_not_lock_out_clients(node):
    """1500 idle client connections (more than a fixed 1024-connection limit) must not stop nexusd
    from answering a new client."""
    import resource
    import socket
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 1700
    if hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}: cannot open enough client sockets here")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    host, port = node.ingress.split("//")[1].rsplit(":", 1)
    socks = []
    try:
        for _ in range(1500):
            socks.append(socket.create_connection((host, int(port)), timeout=10))
        time.sleep(0.5)
        with urllib.request.urlopen(f"{node.ingress}/health", timeout=15) as r:
            assert r.status == 200
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
