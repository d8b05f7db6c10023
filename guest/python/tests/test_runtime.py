"""bootstrap.py as the sandbox runs it, in a child process attached to a FakeHost."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import FUNCTIONS, PYDIR

OK, HANDLER_ERROR = 0, 1


def test_ready_context_and_result(runtime):
    rt = runtime("""
import os, sys
def handler(event, context):
    return {"event": event, "rid": context.aws_request_id, "fn": context.function_name,
            "ver": context.function_version, "arn": context.invoked_function_arn,
            "mem": context.memory_limit_in_mb, "group": context.log_group_name,
            "stream": context.log_stream_name, "left": context.get_remaining_time_in_millis(),
            "path0": sys.path[0].endswith("/shim"), "task_on_path": os.environ["LAMBDA_TASK_ROOT"] in sys.path,
            "env_fn": os.environ.get("AWS_LAMBDA_FUNCTION_NAME")}
""")
    status, out = rt.invoke({"hello": [1, 2]})
    assert status == OK, out
    assert rt.host.ready_runtime == "python3"
    assert out["event"] == {"hello": [1, 2]} and out["rid"].startswith("req-") and out["fn"] == "test-fn"
    assert out["ver"] == "$LATEST" and out["arn"].endswith(":function:test-fn") and out["mem"] == 128
    assert out["group"] == "/aws/lambda/test-fn" and out["stream"]
    assert 0 < out["left"] <= 3000
    assert out["path0"] and out["task_on_path"] and out["env_fn"] == "test-fn"
    # Warm: the same instance serves the next invocation, and its buffers all came back.
    for i in range(20):
        assert rt.invoke(i)[1]["event"] == i
    assert rt.host.alloc.live == {} and rt.host.violations == []


def test_cwd_is_the_code_directory(runtime, tmp_path):
    rt = runtime("def handler(e, c):\n    return open('data.txt').read()\n", task_dir=str(tmp_path / "code"))
    (tmp_path / "code" / "data.txt").write_text("shipped with the code")
    assert rt.invoke({}) == (OK, "shipped with the code")


def test_handler_exception_is_lambda_error(runtime):
    rt = runtime("""
def helper(n):
    raise ValueError("bad input: %s" % n)
def handler(event, context):
    helper(event.get("n"))
""")
    status, err = rt.invoke({"n": 7})
    assert status == HANDLER_ERROR
    assert err["errorType"] == "ValueError" and err["errorMessage"] == "bad input: 7"
    assert isinstance(err["stackTrace"], list) and all(isinstance(s, str) for s in err["stackTrace"])
    assert 'in handler' in err["stackTrace"][0] and 'in helper' in err["stackTrace"][-1]
    assert not any("nexusrt" in s for s in err["stackTrace"])
    # The instance survives and still serves.
    assert rt.invoke({"n": 1})[0] == HANDLER_ERROR
    time.sleep(0.1)
    assert "[ERROR] ValueError: bad input: 7" in rt.output()


def test_import_error_reported_on_invocation(runtime):
    rt = runtime("import no_such_module_anywhere\ndef handler(e, c):\n    return 1\n")
    status, err = rt.invoke({})
    assert status == HANDLER_ERROR and err["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'app'" in err["errorMessage"] and "no_such_module_anywhere" in err["errorMessage"]
    assert err["stackTrace"] == []


def test_exception_at_import_time_shows_user_frames(runtime):
    rt = runtime("x = 1\nraise KeyError('at import')\ndef handler(e, c):\n    return 1\n")
    status, err = rt.invoke({})
    assert status == HANDLER_ERROR and err["errorType"] == "Runtime.ImportModuleError"
    assert "at import" in err["errorMessage"]
    assert len(err["stackTrace"]) == 1 and "app.py\", line 2" in err["stackTrace"][0]


def test_missing_handler_and_syntax_error(runtime, tmp_path):
    rt = runtime("def other(e, c):\n    return 1\n")
    status, err = rt.invoke({})
    assert status == HANDLER_ERROR and err["errorType"] == "Runtime.HandlerNotFound"
    rt2 = runtime("def handler(e, c)\n    return 1\n", task_dir=str(tmp_path / "t2"))
    status, err = rt2.invoke({})
    assert status == HANDLER_ERROR and err["errorType"] == "Runtime.UserCodeSyntaxError"


def test_marshal_error(runtime):
    rt = runtime("def handler(e, c):\n    return {'s': {1, 2}}\n")
    status, err = rt.invoke({})
    assert status == HANDLER_ERROR and err["errorType"] == "Runtime.MarshalError"
    assert "not JSON serializable" in err["errorMessage"]


def test_print_and_logging_reach_the_log(runtime):
    rt = runtime("""
import logging
def handler(e, c):
    print("hello-from-print", e["k"])
    logging.getLogger().warning("hello-from-logging")
    logging.getLogger().info("info is below the default level")
    return 1
""")
    assert rt.invoke({"k": "v42"}) == (OK, 1)
    time.sleep(0.2)
    out = rt.output()
    assert "hello-from-print v42" in out
    assert "[WARNING]" in out and "hello-from-logging" in out and "req-" in out
    assert "info is below" not in out


def test_nexus_mode_never_loads_botocore(runtime):
    rt = runtime("""
import sys, boto3
def handler(e, c):
    boto3.client("s3")
    return {"boto3": boto3.__file__, "real": sorted(m for m in sys.modules
            if m.split(".")[0] in ("botocore", "urllib3", "s3transfer") and "/shim/" not in (getattr(sys.modules[m], "__file__", "") or ""))}
""")
    status, out = rt.invoke({})
    assert status == OK and "/shim/boto3/" in out["boto3"] and out["real"] == []


def test_cold_start_imports_stay_small(runtime):
    """The runtime itself must not drag in logging/traceback for a handler
    that does not use them (they cost cold-start time)."""
    rt = runtime("import sys\ndef handler(e, c):\n    return sorted(m for m in ('logging', 'traceback', 'email') if m in sys.modules)\n")
    assert rt.invoke({}) == (OK, [])


def test_logging_configured_when_imported_late(runtime):
    rt = runtime("def handler(e, c):\n    import logging\n    logging.getLogger('x').error('late-%s', e['k'])\n    return 1\n")
    assert rt.invoke({"k": 5}) == (OK, 1)
    time.sleep(0.2)
    assert "[ERROR]" in rt.output() and "late-5" in rt.output()


def test_baseline_mode_uses_real_boto3(runtime):
    """Baseline mode: invocations over HTTP to the runtime's own server
    (nexusrt/baseline.py), and the real boto3."""
    pytest.importorskip("boto3", reason="python3-boto3 is not installed on this machine")
    import urllib.request
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rt = runtime("import boto3\ndef handler(e, c):\n    return [boto3.__file__, c.aws_request_id, e]\n",
                 mode="baseline", env={"NEXUS_BASELINE_LISTEN": f"127.0.0.1:{port}"})
    deadline = time.time() + 20
    while True:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/invoke", data=b'{"k": 1}', method="POST",
                                         headers={"X-Nexus-Context": json.dumps({"aws_request_id": "base-1"})})
            with urllib.request.urlopen(req, timeout=10) as r:
                status, out = r.headers["X-Nexus-Status"], json.loads(r.read())
            break
        except (ConnectionError, urllib.error.URLError):
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    assert status == "ok" and out[1:] == ["base-1", {"k": 1}]
    assert "/shim/" not in out[0] and out[0].endswith("boto3/__init__.py")


def test_result_over_6mb_is_an_error_not_a_crash(runtime):
    rt = runtime("def handler(e, c):\n    return 'x' * (e['n'])\n")
    status, err = rt.invoke({"n": 7 << 20})
    assert status == HANDLER_ERROR and err["errorType"] == "Function.ResponseSizeTooLarge"
    assert rt.invoke({"n": 3}) == (OK, "xxx")


def test_large_event_and_result(runtime):
    rt = runtime("def handler(e, c):\n    return {'n': len(e['blob']), 'back': e['blob']}\n")
    blob = "x" * (2 << 20)
    status, out = rt.invoke({"blob": blob})
    assert status == OK and out["n"] == len(blob) and out["back"] == blob


def test_handler_uses_s3_through_the_runtime(runtime):
    rt = runtime("""
import boto3
s3 = boto3.client("s3")
def handler(e, c):
    s3.put_object(Bucket="test-bucket", Key="k", Body=e["v"].encode())
    return s3.get_object(Bucket="test-bucket", Key="k")["Body"].read().decode()
""")
    assert rt.invoke({"v": "through the channel"}) == (OK, "through the channel")
    assert rt.host.s3.buckets["test-bucket"]["k"][0] == b"through the channel"
    time.sleep(0.05)
    assert rt.host.alloc.live == {} and rt.host.violations == []


# ------------------------------------------------------------------ examples
def example(runtime, name, mode="nexus"):
    return runtime(task_dir=os.path.join(FUNCTIONS, name), buckets=("nexus-demo",), mode=mode)


def upload_input(rt, name):
    ev = json.load(open(os.path.join(FUNCTIONS, name, "event.json")))
    src = [f for f in os.listdir(os.path.join(FUNCTIONS, name)) if f.startswith("input.")][0]
    rt.host.s3.put(ev["bucket"], ev["key"], open(os.path.join(FUNCTIONS, name, src), "rb").read())
    return ev


def test_example_hello(runtime):
    rt = example(runtime, "hello")
    status, out = rt.invoke(json.load(open(os.path.join(FUNCTIONS, "hello", "event.json"))))
    assert status == OK and out["greeting"] == "Hello, Nexus!"


def test_example_image_rotate(runtime):
    from PIL import Image
    import io
    rt = example(runtime, "image-rotate")
    ev = upload_input(rt, "image-rotate")
    status, out = rt.invoke(ev)
    assert status == OK, out
    src = Image.open(io.BytesIO(rt.host.s3.buckets["nexus-demo"][ev["key"]][0]))
    dst_bytes, ctype = rt.host.s3.buckets["nexus-demo"][ev["output_key"]][0:2]
    dst = Image.open(io.BytesIO(dst_bytes))
    assert dst.size == (src.size[1], src.size[0]) and ctype == "image/png"
    assert list(dst.convert("RGB").getdata()) == list(src.convert("RGB").rotate(90, expand=True).getdata())


def test_example_wordcount(runtime):
    rt = example(runtime, "wordcount")
    ev = upload_input(rt, "wordcount")
    status, out = rt.invoke(ev)
    assert status == OK, out
    counts = json.loads(rt.host.s3.buckets["nexus-demo"][ev["output_key"]][0])
    assert counts["the"] == dict(out["top"])["the"] and out["words"] == sum(counts.values())
    assert out["top"][0][0] == "the" and len(out["top"]) == 5


def test_example_pyaes(runtime):
    pyaes = pytest.importorskip("pyaes", reason="python3-pyaes is not installed on this machine")
    import hashlib
    rt = example(runtime, "pyaes")
    ev = upload_input(rt, "pyaes")
    status, out = rt.invoke(ev)
    assert status == OK, out
    ct = rt.host.s3.buckets["nexus-demo"][ev["output_key"]][0]
    key = hashlib.sha256(b"nexus pyaes example key").digest()
    plain = pyaes.AESModeOfOperationCTR(key, counter=pyaes.Counter(0)).decrypt(ct)
    assert plain == rt.host.s3.buckets["nexus-demo"][ev["key"]][0] and out["bytes"] == len(ct)


def test_clock_is_set_from_the_host_after_a_restore(monkeypatch):
    """After libnexus re-attached (a snapshot restore), the first invocation's
    deadline minus the timeout is the host's time: a guest clock more than a second
    off is set from it, once per re-attach; without a re-attach nothing is touched."""
    from nexusrt import runtime as rt

    class Ch:
        reattaches = 0
    set_to = []
    monkeypatch.setattr(rt._Clock, "reattaches_seen", 0)
    host_ms = time.time() * 1000 + 3600 * 1000          # the guest lags an hour
    ctx = {"deadline_ms": host_ms + 3000}
    cfg = {"timeout_s": 3}
    assert rt.sync_clock_after_restore(Ch, ctx, cfg, set_to.append) is False and set_to == []
    Ch.reattaches = 1
    assert rt.sync_clock_after_restore(Ch, ctx, cfg, set_to.append) is True
    assert set_to == [host_ms]
    assert rt.sync_clock_after_restore(Ch, ctx, cfg, set_to.append) is False   # once per re-attach
    Ch.reattaches = 2
    near = {"deadline_ms": time.time() * 1000 + 3000}
    assert rt.sync_clock_after_restore(Ch, near, cfg, set_to.append) is False and len(set_to) == 1  # in step


def test_output_is_one_write_per_line():
    """The runtime's stdout and stderr hand the kernel one write per line, so instances of one
    function sharing its O_APPEND log never interleave mid-line (under `python3 -u` a print()
    was one write per argument and separator).  Observed with a SOCK_SEQPACKET pair as the
    streams: every write is one packet."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from nexusrt import runtime\n"
            "runtime.line_buffered_output()\n"
            "print('seen', {'k': 2}, 'blue')\n"
            "print('part', end=''); print(' of a line')\n"
            "print('err', 1, file=sys.stderr)\n"
            "print('now', flush=True); print('pending', end='', flush=True)\n")
    for fixed in (True, False):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        src = code if fixed else code.replace("runtime.line_buffered_output()\n", "")
        p = subprocess.run([sys.executable, "-u", "-c", src, PYDIR], stdout=a, stderr=a, timeout=60)
        a.close()
        b.settimeout(5)
        packets = []
        while True:
            m = b.recv(65536)
            if not m:
                break
            packets.append(m)
        b.close()
        assert p.returncode == 0
        if fixed:
            assert packets == [b"seen {'k': 2} blue\n", b"part of a line\n", b"err 1\n", b"now\n", b"pending"]
        else:   # the control: what -u alone does
            assert len(packets) > 5 and b"".join(packets).startswith(b"seen {'k': 2} blue\n")
