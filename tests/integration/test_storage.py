"""The boto3 shim end to end: unmodified boto3 code in the sandbox, real S3 behind nexusd."""
import hashlib
import os

import pytest

from conftest import invoke

OPS = r"""
import hashlib, io, os
import boto3
from botocore.exceptions import ClientError

def handler(event, context):
    b = event["bucket"]
    s3 = boto3.client("s3")
    r = {}
    s3.put_object(Bucket=b, Key="a/one.txt", Body=b"hello world", ContentType="text/plain")
    got = s3.get_object(Bucket=b, Key="a/one.txt")
    r["get"] = got["Body"].read().decode()
    r["ctype"] = got["ContentType"]
    r["len"] = got["ContentLength"]
    r["range"] = s3.get_object(Bucket=b, Key="a/one.txt", Range="bytes=6-10")["Body"].read().decode()
    r["head"] = s3.head_object(Bucket=b, Key="a/one.txt")["ContentLength"]
    try:
        s3.head_object(Bucket=b, Key="missing")
    except ClientError as e:
        r["head_missing"] = e.response["Error"]["Code"]
    try:
        s3.get_object(Bucket=b, Key="missing")
    except s3.exceptions.NoSuchKey as e:
        r["get_missing"] = e.response["Error"]["Code"]
    try:
        s3.get_object(Bucket=b + "-nope", Key="x")
    except ClientError as e:
        r["other_bucket"] = e.response["Error"]["Code"]
    s3.copy_object(Bucket=b, Key="a/two.txt", CopySource={"Bucket": b, "Key": "a/one.txt"})
    r["copy"] = s3.get_object(Bucket=b, Key="a/two.txt")["Body"].read().decode()
    for i in range(7):
        s3.put_object(Bucket=b, Key=f"many/{i:02d}", Body=str(i).encode())
    page = s3.list_objects_v2(Bucket=b, Prefix="many/", MaxKeys=3)
    r["page1"] = [o["Key"] for o in page["Contents"]]
    r["truncated"] = page["IsTruncated"]
    keys = []
    for p in s3.get_paginator("list_objects_v2").paginate(Bucket=b, Prefix="many/", PaginationConfig={"PageSize": 2}):
        keys += [o["Key"] for o in p.get("Contents", [])]
    r["paginated"] = keys
    r["delim"] = [p["Prefix"] for p in s3.list_objects_v2(Bucket=b, Delimiter="/").get("CommonPrefixes", [])]
    s3.delete_object(Bucket=b, Key="a/two.txt")
    r["after_delete"] = [o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix="a/").get("Contents", [])]
    # Big objects through the region, both ways.
    for size in event["sizes"]:
        data = os.urandom(size)
        s3.put_object(Bucket=b, Key=f"big/{size}", Body=data)
        body = s3.get_object(Bucket=b, Key=f"big/{size}")["Body"]
        back = body.read()
        r[f"big{size}"] = [hashlib.sha256(data).hexdigest() == hashlib.sha256(back).hexdigest(), len(back)]
    # File helpers and the resource API.
    with open("/tmp/up.bin", "wb") as f:
        f.write(b"file-body" * 1000)
    s3.upload_file("/tmp/up.bin", b, "files/up.bin")
    s3.download_file(b, "files/up.bin", "/tmp/down.bin")
    r["files"] = open("/tmp/down.bin", "rb").read() == open("/tmp/up.bin", "rb").read()
    buf = io.BytesIO()
    s3.download_fileobj(b, "files/up.bin", buf)
    s3.upload_fileobj(io.BytesIO(b"from-fileobj"), b, "files/fo.bin")
    r["fileobj"] = [len(buf.getvalue()), s3.get_object(Bucket=b, Key="files/fo.bin")["Body"].read().decode()]
    res = boto3.resource("s3")
    bk = res.Bucket(b)
    r["resource"] = sorted(o.key for o in bk.objects.filter(Prefix="files/"))
    r["resource_get"] = res.Object(b, "a/one.txt").get()["Body"].read().decode()
    body = s3.get_object(Bucket=b, Key="a/one.txt")["Body"]
    r["chunks"] = [bytes(c).decode() for c in body.iter_chunks(chunk_size=4)]
    sess = boto3.session.Session()
    r["session"] = sess.client("s3").head_object(Bucket=b, Key="a/one.txt")["ContentLength"]
    try:
        s3.put_bucket_policy(Bucket=b, Policy="{}")
    except Exception as e:
        r["unsupported"] = str(e)
    return r
"""


def test_s3_operations_through_shim(s3, lam, deploy, bucket):
    sizes = [1 << 20, 10 << 20]
    name = deploy(OPS, buckets=[bucket], timeout=60, memory=512)
    out, err, _ = invoke(lam, name, {"bucket": bucket, "sizes": sizes})
    assert err is None, out
    assert out["get"] == "hello world" and out["len"] == 11 and out["ctype"] == "text/plain"
    assert out["range"] == "world"
    assert out["head"] == 11
    assert out["head_missing"] == "404"
    assert out["get_missing"] == "NoSuchKey"
    assert out["other_bucket"] == "AccessDenied"
    assert out["copy"] == "hello world"
    assert out["page1"] == ["many/00", "many/01", "many/02"] and out["truncated"] is True
    assert out["paginated"] == [f"many/{i:02d}" for i in range(7)]
    assert sorted(out["delim"]) == ["a/", "many/"]
    assert out["after_delete"] == ["a/one.txt"]
    for size in sizes:
        assert out[f"big{size}"] == [True, size]
    assert out["files"] is True
    assert out["fileobj"] == [9000, "from-fileobj"]
    assert out["resource"] == ["files/fo.bin", "files/up.bin"]
    assert out["resource_get"] == "hello world"
    assert "".join(out["chunks"]) == "hello world" and len(out["chunks"]) == 3
    assert out["session"] == 11
    assert "put_bucket_policy" in out["unsupported"]
    # What the function wrote is really in S3, byte for byte.
    assert s3.get_object(Bucket=bucket, Key="a/one.txt")["Body"].read() == b"hello world"
    assert s3.head_object(Bucket=bucket, Key=f"big/{10 << 20}")["ContentLength"] == 10 << 20


def test_botocore_is_not_loaded_in_nexus_mode(lam, deploy, bucket):
    name = deploy("import sys, boto3\ndef handler(e, c):\n    boto3.client('s3')\n"
                  "    return [m for m in sys.modules if m.startswith('botocore.') and 'shim' not in "
                  "getattr(sys.modules[m], '__file__', '') ]\n", buckets=[bucket])
    out, err, _ = invoke(lam, name)
    assert err is None and out == [], out
