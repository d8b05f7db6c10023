"""Deferred write-back ("nexus:writeback": "async"): the journal, read-your-writes,
background upload, crash safety (SIGKILL during a storm of puts, replay on restart),
and loud failures when the journal is full or unwritable."""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import tempfile
import threading
import time
import urllib.request

import pytest

from conftest import Node, invoke, stop_node, unique, zip_code

ASYNC_FN = r"""
import hashlib
import boto3

def handler(event, context):
    s3 = boto3.client("s3")
    b, k = event["bucket"], event["key"]
    data = (event["text"] * (event["size"] // len(event["text"]) + 1)).encode()[: event["size"]]
    r = s3.put_object(Bucket=b, Key=k, Body=data, ContentType="text/x-test")
    got = s3.get_object(Bucket=b, Key=k)
    body = got["Body"].read()
    head = s3.head_object(Bucket=b, Key=k)
    part = s3.get_object(Bucket=b, Key=k, Range="bytes=1-3")["Body"].read()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix=k).get("Contents", [])]
    return {"etag": r["ETag"], "get_sha": hashlib.sha256(body).hexdigest(),
            "put_sha": hashlib.sha256(data).hexdigest(), "get_etag": got["ETag"],
            "ctype": got["ContentType"], "head_len": head["ContentLength"], "range": part.decode(),
            "listed": listed}
"""

STORM_FN = r"""
import hashlib
import boto3

def handler(event, context):
    s3 = boto3.client("s3")
    acked = []
    for i in range(event["n"]):
        k = "%s/%04d" % (event["prefix"], i)
        data = hashlib.sha256(k.encode()).hexdigest().encode() * (event["size"] // 64)
        s3.put_object(Bucket=event["bucket"], Key=k, Body=data)
        # the ack line is in the function's log (written by the sandbox itself) before the next put
        print("ACK %s %s" % (k, hashlib.sha256(data).hexdigest()), flush=True)
        acked.append([k, hashlib.sha256(data).hexdigest()])
    return {"acked": acked}
"""

BIGPUT_FN = r"""
import boto3
from botocore.exceptions import ClientError

def handler(event, context):
    s3 = boto3.client("s3")
    out = []
    for i in range(event["n"]):
        try:
            s3.put_object(Bucket=event["bucket"], Key="big/%d" % i, Body=b"x" * event["size"])
            out.append("ok")
        except ClientError as e:
            out.append("%s %s %s" % (e.response["Error"]["Code"],
                                     e.response["ResponseMetadata"].get("HTTPStatusCode"),
                                     e.response["Error"].get("Message", "")))
    return out
"""


def create(lam, code, buckets, writeback="async", timeout=60, name=None):
    name = name or unique("wb")
    lam.create_function(FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::000000000000:role/nexus",
                        Handler="app.handler", Code={"ZipFile": zip_code(code)}, Timeout=timeout, MemorySize=256,
                        Tags={"nexus:buckets": ",".join(buckets), "nexus:writeback": writeback})
    return name


def wait_object(s3, bucket, key, sha, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            last = hashlib.sha256(body).hexdigest()
            if last == sha:
                return True
        except s3.exceptions.NoSuchKey:
            pass
        time.sleep(0.1)
    return False


def metric(node, name):
    text = urllib.request.urlopen(node.ingress + "/metrics", timeout=10).read().decode()
    m = re.search(r"^" + re.escape(name) + r" (\d+)", text, re.M)
    return int(m.group(1)) if m else None


def test_bad_writeback_tag_rejected(lam):
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        create(lam, ASYNC_FN, ["x"], writeback="sometimes")


def test_async_put_read_your_writes_then_uploaded(node, lam, s3, bucket):
    name = create(lam, ASYNC_FN, [bucket])
    try:
        key = unique("k")
        res, err, _ = invoke(lam, name, {"bucket": bucket, "key": key, "text": "abcdef", "size": 1 << 20})
        assert err is None, res
        assert res["get_sha"] == res["put_sha"]              # read-your-writes (from the journal)
        assert res["etag"] == res["get_etag"] and re.fullmatch(r'"[0-9a-f]{32}"', res["etag"])
        assert res["ctype"] == "text/x-test" and res["head_len"] == 1 << 20 and res["range"] == "bcd"
        # the object reaches S3, with the ETag the function was given
        assert wait_object(s3, bucket, key, res["put_sha"]), "the async put never reached S3"
        assert s3.head_object(Bucket=bucket, Key=key)["ETag"] == res["etag"]
    finally:
        lam.delete_function(FunctionName=name)


def test_sync_is_default(node, lam, s3, bucket):
    name = create(lam, ASYNC_FN, [bucket], writeback="sync")
    try:
        key = unique("k")
        acked_before = metric(node, 'nexus_writeback_total{result="acked"}')
        res, err, _ = invoke(lam, name, {"bucket": bucket, "key": key, "text": "xyz", "size": 1000})
        assert err is None, res
        # sync: the object is in S3 when put_object returned, so LIST saw it
        assert res["listed"] == [key]
        assert metric(node, 'nexus_writeback_total{result="acked"}') == acked_before
    finally:
        lam.delete_function(FunctionName=name)


CRASHER_FN = r"""
import os, threading, time
import boto3

def handler(event, context):
    s3 = boto3.client("s3")
    def puts():
        for i in range(50):
            s3.put_object(Bucket=event["bucket"], Key="c/%d" % i, Body=b"y" * (1 << 20))
    for _ in range(4):
        threading.Thread(target=puts, daemon=True).start()
    time.sleep(event["after"])
    os._exit(3)   # dies with async puts waiting for their fsync
"""


def test_instance_dying_with_puts_in_flight(node, lam, s3, bucket):
    name = create(lam, CRASHER_FN, [bucket])
    try:
        for after in (0.0, 0.01, 0.05):
            res, err, _ = invoke(lam, name, {"bucket": bucket, "after": after})
            assert err == "Unhandled" and res["errorType"] == "Runtime.ExitError", res
        # nexusd is fine and the function still works
        name2 = create(lam, ASYNC_FN, [bucket])
        res, err, _ = invoke(lam, name2, {"bucket": bucket, "key": "after-crash", "text": "ok", "size": 10})
        assert err is None and res["get_sha"] == res["put_sha"], res
        lam.delete_function(FunctionName=name2)
    finally:
        lam.delete_function(FunctionName=name)


# ---------------------------------------------------------------- a private node


@pytest.fixture(scope="module")
def pnode():
    home = tempfile.mkdtemp(prefix="nexus-wb-")
    n = Node(home)
    n.up()
    yield n
    stop_node(n)


def nexusd_pid(n):
    return int(open(os.path.join(n.home, "nexusd.pid")).read().split()[0])


def restart(n, *flags):
    """nexusd is dead (its S3 server is not): `nexus up` starts nexusd again."""
    args = ["up"] + (["--", *flags] if flags else [])
    for _ in range(60):   # the shared build/ may be mid-rebuild by another make
        p = n.cli(*args, timeout=180, check=False)
        if p.returncode == 0 or "is not built" not in p.stderr:
            break
        time.sleep(2)
    assert p.returncode == 0, f"nexus up failed: {p.stdout}\n{p.stderr}"
    n.status = json.loads(n.cli("status", "--json").stdout)


def kill_nexusd(n, sig=signal.SIGKILL):
    pid = nexusd_pid(n)
    os.kill(pid, sig)
    for _ in range(600):
        try:
            os.kill(pid, 0)
            if open(f"/proc/{pid}/stat").read().split()[2] == "Z":
                return
        except (ProcessLookupError, FileNotFoundError):
            return
        time.sleep(0.05)
    raise AssertionError(f"nexusd (pid {pid}) did not exit after {sig.name}")


def post_invoke(n, name, payload, timeout=120):
    req = urllib.request.Request(f"{n.ingress}/2015-03-31/functions/{name}/invocations",
                                 data=json.dumps(payload).encode(), method="POST")
    return urllib.request.urlopen(req, timeout=timeout).read()


def test_crash_safety_sigkill_during_put_storm(pnode):
    n = pnode
    lam, s3 = n.boto("lambda"), n.boto("s3")
    bkt = unique("storm")
    s3.create_bucket(Bucket=bkt)
    name = create(lam, STORM_FN, [bkt], timeout=120)
    log = os.path.join(n.home, "state", "logs", f"{name}.log")
    rng = random.Random(20261127)
    total_acked = 0
    for rnd in range(4):   # 3 x SIGKILL, then SIGTERM (a clean stop in the middle of the storm)
        prefix = f"r{rnd}"
        sig = signal.SIGKILL if rnd < 3 else signal.SIGTERM
        threads = [threading.Thread(target=lambda p=f"{prefix}/t{t}": _quiet(post_invoke, n, name,
                                    {"bucket": bkt, "prefix": p, "n": 250, "size": 2048}))
                   for t in range(4)]   # 4 x 250 = 1000 puts per round
        for t in threads:
            t.start()
        # the first acks of this round (cold starts are done), then a random point of the storm
        t0 = time.time()
        while time.time() - t0 < 30 and not (os.path.exists(log) and f"ACK {prefix}/" in open(log).read()):
            time.sleep(0.05)
        delay = rng.uniform(0.1, 2.0)
        time.sleep(delay)
        kill_nexusd(n, sig)
        for t in threads:
            t.join(timeout=30)
        acks = {}
        for line in open(log, errors="replace"):
            m = re.match(r"ACK (" + re.escape(prefix) + r"/\S+) ([0-9a-f]{64})$", line.strip())
            if m:
                acks[m.group(1)] = m.group(2)
        text = open(os.path.join(n.home, "logs", "nexusd.log"), errors="replace").read()
        assert "Sanitizer" not in text and "runtime error:" not in text, text[-3000:]
        restart(n)
        replayed = metric(n, 'nexus_writeback_total{result="replayed"}')
        assert acks, f"round {rnd}: no put was acknowledged within {delay:.2f} s"
        total_acked += len(acks)
        missing = [k for k, sha in sorted(acks.items()) if not wait_object(s3, bkt, k, sha, timeout=0.01)]
        deadline = time.time() + 60
        while missing and time.time() < deadline:   # replay drains in the background
            time.sleep(0.5)
            missing = [k for k in missing if not wait_object(s3, bkt, k, acks[k], timeout=0.01)]
        assert not missing, (f"round {rnd} (killed after {delay:.2f} s): {len(missing)} of {len(acks)} "
                             f"acknowledged puts are not in S3 with the right bytes, e.g. {missing[:5]}")
        print(f"round {rnd}: {sig.name} {delay:.2f} s into the storm, {len(acks)} acknowledged puts all in S3 "
              f"({replayed} journal records were still to upload at the restart)")
    assert total_acked >= 100


def test_replay_does_not_undo_a_later_write(pnode):
    """An uploaded record still in a live segment must not be uploaded again after a crash:
    someone may have written the key since."""
    n = pnode
    lam, s3 = n.boto("lambda"), n.boto("s3")
    bkt = unique("later")
    s3.create_bucket(Bucket=bkt)
    name = create(lam, ASYNC_FN, [bkt])
    res, err, _ = invoke(lam, name, {"bucket": bkt, "key": "k", "text": "old", "size": 3000})
    assert err is None, res
    assert wait_object(s3, bkt, "k", res["put_sha"])
    s3.put_object(Bucket=bkt, Key="k", Body=b"newer, from outside Nexus")
    time.sleep(1.0)   # the upload's DONE record is fsynced with the next group commit
    kill_nexusd(n)
    restart(n)
    time.sleep(2.0)   # replay would have uploaded by now
    assert s3.get_object(Bucket=bkt, Key="k")["Body"].read() == b"newer, from outside Nexus"


def _quiet(fn, *a):
    try:
        fn(*a)
    except Exception:
        pass   # nexusd was killed under it


def test_full_journal_fails_loudly(pnode):
    n = pnode
    kill_nexusd(n, signal.SIGTERM)
    restart(n, "--journal-max-mb", "1")
    try:
        lam, s3 = n.boto("lambda"), n.boto("s3")
        bkt = unique("full")
        s3.create_bucket(Bucket=bkt)
        name = create(lam, BIGPUT_FN, [bkt])
        res, err, _ = invoke(lam, name, {"bucket": bkt, "n": 3, "size": 600 * 1024})
        assert err is None, res
        assert res[0] == "ok", res
        assert any(r.startswith("SlowDown 503") and "journal is full" in r for r in res[1:]), res
        assert metric(n, 'nexus_writeback_total{result="rejected_full"}') >= 1
    finally:
        kill_nexusd(n, signal.SIGTERM)
        restart(n)


def test_unwritable_journal_fails_loudly(pnode):
    n = pnode
    kill_nexusd(n, signal.SIGTERM)
    jdir = os.path.join(n.home, "state", "journal")
    shutil.rmtree(jdir, ignore_errors=True)
    with open(jdir, "w") as f:   # a file where the directory should be: ENOTDIR, even for root
        f.write("not a directory\n")
    restart(n)
    try:
        lam, s3 = n.boto("lambda"), n.boto("s3")
        bkt = unique("unw")
        s3.create_bucket(Bucket=bkt)
        name = create(lam, BIGPUT_FN, [bkt])
        res, err, _ = invoke(lam, name, {"bucket": bkt, "n": 1, "size": 1000})
        assert err is None, res
        assert res[0].startswith("ServiceUnavailable 503") and "journal" in res[0], res
        assert s3.list_objects_v2(Bucket=bkt).get("KeyCount", 0) == 0
    finally:
        kill_nexusd(n, signal.SIGTERM)
        os.unlink(jdir)
        restart(n)
