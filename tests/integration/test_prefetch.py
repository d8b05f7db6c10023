"""Input prefetch overlapped with a cold start: hints from the X-Nexus-Prefetch header, from the
"nexus:prefetch" tag and learned from earlier invocations; a hit is served without a second
storage read; wrong hints, stale objects and forbidden buckets are each checked."""
import hashlib
import json
import re
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import unique, zip_code

READER = r"""
import hashlib, os, time
import boto3

def handler(event, context):
    if event.get("die"):
        os._exit(3)   # the instance dies before it reads anything
    time.sleep(event.get("sleep", 0))
    s3 = boto3.client("s3")
    src = event.get("input", {})
    body = s3.get_object(Bucket=event.get("bucket") or src["b"], Key=event.get("key") or src["k"])["Body"].read()
    return {"sha": hashlib.sha256(body).hexdigest(), "len": len(body)}
"""


def metrics(node):
    return urllib.request.urlopen(node.ingress + "/metrics", timeout=10).read().decode()


def m(text, name):
    r = re.search(r"^" + re.escape(name) + r" (\d+)", text, re.M)
    assert r, f"{name} not in /metrics"
    return int(r.group(1))


PF = {k: f'nexus_prefetch_total{{result="{k}"}}' for k in ("hit", "miss", "stale", "denied", "elsewhere")}
GETS = 'nexus_storage_operations_total{op="GET",result="ok"}'


def gets_metric(text):
    for name in (GETS, GETS.replace('"GET"', '"get"')):
        r = re.search(r"^" + re.escape(name) + r" (\d+)", text, re.M)
        if r:
            return int(r.group(1))
    raise AssertionError("no GET storage counter in /metrics")


def snapshot(node):
    t = metrics(node)
    d = {k: m(t, v) for k, v in PF.items()}
    d["gets"] = gets_metric(t)
    d["wasted"] = m(t, "nexus_prefetch_wasted_bytes_total")
    d["region"] = m(t, "nexus_prefetch_region_total")   # fetched straight into the new instance's region
    return d


def delta(a, b):
    return {k: b[k] - a[k] for k in a}


def create(lam, buckets, tags=None):
    name = unique("pf")
    t = {"nexus:buckets": ",".join(buckets)}
    t.update(tags or {})
    lam.create_function(FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::000000000000:role/nexus",
                        Handler="app.handler", Code={"ZipFile": zip_code(READER)}, Timeout=30, MemorySize=256,
                        Tags=t)
    return name


def call(node, name, payload, hints=()):
    req = urllib.request.Request(f"{node.ingress}/2015-03-31/functions/{name}/invocations",
                                 data=json.dumps(payload).encode(), method="POST")
    for h in hints:
        req.add_header("X-Nexus-Prefetch", h)   # urllib keeps one per name: several go comma-separated
    if len(hints) > 1:
        req.headers.pop("X-nexus-prefetch", None)
        req.add_header("X-Nexus-Prefetch", ", ".join(hints))
    r = urllib.request.urlopen(req, timeout=60)
    assert r.headers.get("X-Amz-Function-Error") is None
    return json.loads(r.read())


@pytest.fixture
def obj(s3, bucket):
    data = bytes(range(256)) * 4096   # 1 MiB
    key = unique("in")
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return bucket, key, data


def test_cold_start_hint_is_a_hit_with_one_storage_read(node, lam, obj):
    bucket, key, data = obj
    name = create(lam, [bucket])
    try:
        before = snapshot(node)
        res = call(node, name, {"bucket": bucket, "key": key}, hints=[f"s3://{bucket}/{key}"])
        d = delta(before, snapshot(node))
        assert res == {"sha": hashlib.sha256(data).hexdigest(), "len": len(data)}
        assert d["hit"] == 1 and d["miss"] == 0 and d["stale"] == 0, d
        assert d["gets"] == 1, f"the object was read {d['gets']} times from storage, expected once: {d}"
        assert d["region"] == 1, f"the prefetch did not go into the new instance's region: {d}"
    finally:
        lam.delete_function(FunctionName=name)


def test_wrong_hint_costs_only_the_fetch(node, lam, s3, obj):
    bucket, key, data = obj
    other = unique("other")
    s3.put_object(Bucket=bucket, Key=other, Body=b"z" * 5000)
    name = create(lam, [bucket])
    try:
        before = snapshot(node)
        res = call(node, name, {"bucket": bucket, "key": key}, hints=[f"s3://{bucket}/{other}"])
        d = delta(before, snapshot(node))
        assert res["sha"] == hashlib.sha256(data).hexdigest()
        assert d["miss"] == 1 and d["hit"] == 0 and d["wasted"] == 5000, d
        assert d["gets"] == 2, d   # the wasted prefetch + the function's own read
    finally:
        lam.delete_function(FunctionName=name)


def test_stale_object_reads_the_new_bytes(node, lam, s3, obj):
    bucket, key, data = obj
    new = b"new version " * 1000
    name = create(lam, [bucket])
    try:
        before = snapshot(node)

        def overwrite():
            time.sleep(0.3)   # after the prefetch has fetched the old version
            s3.put_object(Bucket=bucket, Key=key, Body=new)
        t = threading.Thread(target=overwrite)
        t.start()
        res = call(node, name, {"bucket": bucket, "key": key, "sleep": 1.5}, hints=[f"s3://{bucket}/{key}"])
        t.join()
        d = delta(before, snapshot(node))
        assert res == {"sha": hashlib.sha256(new).hexdigest(), "len": len(new)}, "served a stale prefetch"
        assert d["stale"] == 1 and d["hit"] == 0, d
        # the stale bytes were in a reserved region buffer: freed, and the new object read from S3
        assert d["region"] == 1 and d["gets"] == 2, d
    finally:
        lam.delete_function(FunctionName=name)


def test_hint_on_an_instance_that_dies_before_reading(node, lam, obj):
    bucket, key, data = obj
    name = create(lam, [bucket])
    try:
        before = snapshot(node)
        req = urllib.request.Request(f"{node.ingress}/2015-03-31/functions/{name}/invocations",
                                     data=json.dumps({"die": True}).encode(), method="POST")
        req.add_header("X-Nexus-Prefetch", f"s3://{bucket}/{key}")
        try:
            r = urllib.request.urlopen(req, timeout=60)
            assert r.headers.get("X-Amz-Function-Error"), "the instance exited, yet the invocation succeeded"
        except urllib.error.HTTPError:
            pass
        d = delta(before, snapshot(node))
        assert d["hit"] == 0 and d["miss"] == 1, d   # the reserved buffer went with the instance
        # nexusd is fine, and the next cold start with the same hint is a hit from the region
        before = snapshot(node)
        res = call(node, name, {"bucket": bucket, "key": key}, hints=[f"s3://{bucket}/{key}"])
        d = delta(before, snapshot(node))
        assert res == {"sha": hashlib.sha256(data).hexdigest(), "len": len(data)}
        assert d["hit"] == 1 and d["region"] == 1 and d["gets"] == 1, d
    finally:
        lam.delete_function(FunctionName=name)


def test_hint_for_forbidden_bucket_is_denied_without_a_read(node, lam, s3, obj):
    bucket, key, data = obj
    secret = unique("secret")
    s3.create_bucket(Bucket=secret)
    s3.put_object(Bucket=secret, Key="s", Body=b"secret")
    name = create(lam, [bucket])
    try:
        before = snapshot(node)
        res = call(node, name, {"bucket": bucket, "key": key}, hints=[f"s3://{secret}/s"])
        d = delta(before, snapshot(node))
        assert res["sha"] == hashlib.sha256(data).hexdigest()
        assert d["denied"] == 1 and d["hit"] == 0 and d["miss"] == 0, d
        assert d["gets"] == 1, d   # only the function's own read: nothing of the forbidden bucket
    finally:
        lam.delete_function(FunctionName=name)
        s3.delete_object(Bucket=secret, Key="s")
        s3.delete_bucket(Bucket=secret)


def test_declared_hint_from_tag(node, lam, obj):
    bucket, key, data = obj
    name = create(lam, [bucket], {"nexus:prefetch": "bucket,key"})
    try:
        before = snapshot(node)
        res = call(node, name, {"bucket": bucket, "key": key})
        d = delta(before, snapshot(node))
        assert res["sha"] == hashlib.sha256(data).hexdigest()
        assert d["hit"] == 1 and d["gets"] == 1, d
    finally:
        lam.delete_function(FunctionName=name)


def test_learned_hint(node, lam, s3, obj):
    bucket, key, data = obj
    name = create(lam, [bucket])
    try:
        for i in range(3):   # three invocations whose first read is named by event fields
            k = unique("learn")
            s3.put_object(Bucket=bucket, Key=k, Body=b"%d" % i)
            call(node, name, {"input": {"b": bucket, "k": k}, "n": i})
        # a configuration change retires the instance: the next invocation is a cold start
        lam.update_function_configuration(FunctionName=name, Description="retire the warm instance")
        before = snapshot(node)
        res = call(node, name, {"input": {"b": bucket, "k": key}, "n": 9})
        d = delta(before, snapshot(node))
        assert res["sha"] == hashlib.sha256(data).hexdigest()
        assert d["hit"] == 1 and d["gets"] == 1, d
    finally:
        lam.delete_function(FunctionName=name)


def test_bad_prefetch_tag_rejected(lam):
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        create(lam, ["x"], {"nexus:prefetch": "justone"})
