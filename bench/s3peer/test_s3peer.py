#!/usr/bin/python3
"""test-s3peer: nexus-s3peer against the real boto3 (every operation the
functions, the harness and nexusd use; S3's error codes and statuses; SigV4
checks, Content-MD5, x-amz-content-sha256 and aws-chunked uploads built by
hand), then nexusd's own S3 client against it: a private node whose storage
is the peer runs a nexus-mode function doing the same operations through the
shim and the channel (skipped, loudly, without root or the guest rootfs)."""
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import sys
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from node import BIN, ROOT, Node, start_s3peer, zip_dir  # noqa: E402

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

KEY = "S3RVER"
RESULTS = os.environ.get("NEXUS_TEST_RESULTS", os.path.join(ROOT, os.environ.get("BUILD", "build"), "test-results"))
passed, failed, skips = 0, 0, []


def check(name, fn):
    global passed, failed
    try:
        fn()
        print(f"  ok   {name}")
        passed += 1
    except Exception:  # noqa: BLE001 - report and go on
        print(f"  FAIL {name}")
        traceback.print_exc()
        failed += 1


def client(endpoint, secret=KEY, access=KEY):
    return boto3.session.Session(aws_access_key_id=access, aws_secret_access_key=secret,
                                 region_name="us-east-1").client(
        "s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 0}))


def code_of(fn):
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


# ---- a SigV4 signer of our own, to send what boto3 would not
def _h(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed_request(endpoint, method, path, body=b"", headers=None, payload_hash=None, secret=KEY,
                   sign_body=None):
    """Send one request signed by hand; sign_body(key, seed_sig, amzdate, scope)
    may return the wire body (aws-chunked).  Returns (status, body bytes)."""
    u = urllib.parse.urlparse(endpoint)
    now = time.gmtime()
    amzdate, date = time.strftime("%Y%m%dT%H%M%SZ", now), time.strftime("%Y%m%d", now)
    hdrs = {"host": u.netloc, "x-amz-date": amzdate,
            "x-amz-content-sha256": payload_hash or hashlib.sha256(body).hexdigest()}
    hdrs.update({k.lower(): v for k, v in (headers or {}).items()})
    signed = sorted(hdrs)
    creq = "\n".join([method, path, "", *[f"{k}:{hdrs[k]}" for k in signed], "", ";".join(signed),
                      hdrs["x-amz-content-sha256"]])
    scope = f"{date}/us-east-1/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = _h(_h(_h(_h(("AWS4" + secret).encode(), date), "us-east-1"), "s3"), "aws4_request")
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    hdrs["authorization"] = f"AWS4-HMAC-SHA256 Credential={KEY}/{scope}, SignedHeaders={';'.join(signed)}, Signature={sig}"
    if sign_body:
        body = sign_body(k, sig, amzdate, scope)
    hdrs["content-length"] = str(len(body))
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def aws_chunked(data, chunk, tamper=False):
    def build(k, seed, amzdate, scope):
        out, prev = b"", seed
        empty = hashlib.sha256(b"").hexdigest()
        pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
        for n, c in enumerate(pieces):
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amzdate, scope, prev, empty, hashlib.sha256(c).hexdigest()])
            prev = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
            if tamper and n == 1:
                c = bytes([c[0] ^ 1]) + c[1:]
            out += f"{len(c):x};chunk-signature={prev}\r\n".encode() + c + b"\r\n"
        return out
    return build


def unit(endpoint):
    s3 = client(endpoint)
    b = "peer-test"
    check("CreateBucket, HeadBucket, ListBuckets", lambda: (
        s3.create_bucket(Bucket=b),
        s3.head_bucket(Bucket=b),
        _eq([x["Name"] for x in s3.list_buckets()["Buckets"]], [b])))
    check("CreateBucket again: 409 BucketAlreadyOwnedByYou",
          lambda: _eq(code_of(lambda: s3.create_bucket(Bucket=b)), ("BucketAlreadyOwnedByYou", 409)))
    check("CreateBucket with an invalid name: 400 InvalidBucketName",
          lambda: _eq(code_of(lambda: s3.create_bucket(Bucket="Bad_Name")), ("InvalidBucketName", 400)))

    def put_get():
        body = b"hello world"
        r = s3.put_object(Bucket=b, Key="a/one.txt", Body=body, ContentType="text/plain")
        _eq(r["ETag"], '"%s"' % hashlib.md5(body).hexdigest())
        g = s3.get_object(Bucket=b, Key="a/one.txt")
        _eq((g["Body"].read(), g["ContentType"], g["ContentLength"], g["ETag"]),
            (body, "text/plain", 11, r["ETag"]))
        h = s3.head_object(Bucket=b, Key="a/one.txt")
        _eq((h["ContentLength"], h["ETag"], h["ContentType"]), (11, r["ETag"], "text/plain"))
    check("PutObject/GetObject/HeadObject: body, ETag = MD5 hex, Content-Type, length", put_get)

    def odd_keys():
        for key in ("sp ace/plus+and&amp=q?x#y", "ünïcödé/ключ", "a//double/slash", "tilde~star*(paren)"):
            s3.put_object(Bucket=b, Key=key, Body=key.encode())
            _eq(s3.get_object(Bucket=b, Key=key)["Body"].read(), key.encode())
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]]
        assert "sp ace/plus+and&amp=q?x#y" in keys and "ünïcödé/ключ" in keys, keys
    check("keys needing encoding round-trip (signatures, listing with encoding-type=url)", odd_keys)

    def ranges():
        body = bytes(range(256)) * 40
        s3.put_object(Bucket=b, Key="r", Body=body)
        for rng, want in (("bytes=6-10", body[6:11]), ("bytes=10000-", body[10000:]), ("bytes=-5", body[-5:]),
                          ("bytes=10000-99999", body[10000:])):
            g = s3.get_object(Bucket=b, Key="r", Range=rng)
            _eq((g["Body"].read(), g["ResponseMetadata"]["HTTPStatusCode"]), (want, 206))
        _eq(s3.get_object(Bucket=b, Key="r", Range="bytes=6-10")["ContentRange"], "bytes 6-10/10240")
        _eq(code_of(lambda: s3.get_object(Bucket=b, Key="r", Range="bytes=20000-")), ("InvalidRange", 416))
    check("GetObject Range: 206 + Content-Range, suffix, open end, 416 InvalidRange", ranges)

    def big():
        data = os.urandom(10 << 20)
        s3.put_object(Bucket=b, Key="big", Body=data)
        back = s3.get_object(Bucket=b, Key="big")["Body"].read()
        assert back == data, (len(back), len(data))
    check("10 MiB PutObject/GetObject", big)

    def errors():
        _eq(code_of(lambda: s3.get_object(Bucket=b, Key="missing")), ("NoSuchKey", 404))
        _eq(code_of(lambda: s3.head_object(Bucket=b, Key="missing")), ("404", 404))
        _eq(code_of(lambda: s3.get_object(Bucket="no-such-bucket", Key="x")), ("NoSuchBucket", 404))
        _eq(code_of(lambda: s3.put_object(Bucket="no-such-bucket", Key="x", Body=b"x")), ("NoSuchBucket", 404))
        _eq(code_of(lambda: s3.list_objects_v2(Bucket="no-such-bucket")), ("NoSuchBucket", 404))
        _eq(code_of(lambda: s3.delete_bucket(Bucket=b)), ("BucketNotEmpty", 409))
    check("errors: NoSuchKey/NoSuchBucket 404, HEAD 404 without body, BucketNotEmpty 409", errors)

    def copy_delete():
        r = s3.copy_object(Bucket=b, Key="a/two.txt", CopySource={"Bucket": b, "Key": "a/one.txt"})
        _eq(r["CopyObjectResult"]["ETag"], '"%s"' % hashlib.md5(b"hello world").hexdigest())
        g = s3.get_object(Bucket=b, Key="a/two.txt")
        _eq((g["Body"].read(), g["ContentType"]), (b"hello world", "text/plain"))
        _eq(code_of(lambda: s3.copy_object(Bucket=b, Key="z", CopySource={"Bucket": b, "Key": "nope"})),
            ("NoSuchKey", 404))
        _eq(s3.delete_object(Bucket=b, Key="a/two.txt")["ResponseMetadata"]["HTTPStatusCode"], 204)
        _eq(code_of(lambda: s3.get_object(Bucket=b, Key="a/two.txt")), ("NoSuchKey", 404))
        _eq(s3.delete_object(Bucket=b, Key="a/two.txt")["ResponseMetadata"]["HTTPStatusCode"], 204)
    check("CopyObject (ETag, Content-Type kept), DeleteObject (204, idempotent)", copy_delete)

    def listing():
        for i in range(25):
            s3.put_object(Bucket=b, Key=f"many/{i:02d}", Body=str(i).encode())
        for i in range(3):
            s3.put_object(Bucket=b, Key=f"many/sub{i}/x", Body=b"x")
        page = s3.list_objects_v2(Bucket=b, Prefix="many/", MaxKeys=10)
        _eq((page["KeyCount"], page["IsTruncated"], page["Contents"][0]["Key"], page["Contents"][0]["Size"]),
            (10, True, "many/00", 1))
        keys = []
        for p in s3.get_paginator("list_objects_v2").paginate(Bucket=b, Prefix="many/", PaginationConfig={"PageSize": 7}):
            keys += [o["Key"] for o in p.get("Contents", [])]
        _eq(keys, [f"many/{i:02d}" for i in range(25)] + [f"many/sub{i}/x" for i in range(3)])
        d = s3.list_objects_v2(Bucket=b, Prefix="many/", Delimiter="/")
        _eq([p["Prefix"] for p in d["CommonPrefixes"]], ["many/sub0/", "many/sub1/", "many/sub2/"])
        _eq(len(d["Contents"]), 25)
        # pages that end on a common prefix continue after it
        got = []
        for p in s3.get_paginator("list_objects_v2").paginate(Bucket=b, Prefix="many/", Delimiter="/",
                                                              PaginationConfig={"PageSize": 2}):
            got += [o["Key"] for o in p.get("Contents", [])] + [c["Prefix"] for c in p.get("CommonPrefixes", [])]
        _eq(sorted(got), sorted([f"many/{i:02d}" for i in range(25)] + [f"many/sub{i}/" for i in range(3)]))
        _eq(s3.list_objects_v2(Bucket=b, StartAfter="many/23", Prefix="many/0")["KeyCount"], 0)
        v1 = s3.list_objects(Bucket=b, Prefix="many/", MaxKeys=5)
        _eq(([o["Key"] for o in v1["Contents"]], v1["IsTruncated"]), ([f"many/{i:02d}" for i in range(5)], True))
    check("ListObjectsV2: prefix, max-keys, continuation, delimiter, start-after; ListObjects v1", listing)

    def signatures():
        bad = client(endpoint, secret="wrong")
        _eq(code_of(lambda: bad.get_object(Bucket=b, Key="a/one.txt")), ("SignatureDoesNotMatch", 403))
        _eq(code_of(lambda: bad.put_object(Bucket=b, Key="x", Body=b"x")), ("SignatureDoesNotMatch", 403))
        other = client(endpoint, access="SOMEONE")
        _eq(code_of(lambda: other.list_buckets()), ("InvalidAccessKeyId", 403))
        u = urllib.parse.urlparse(endpoint)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        conn.request("GET", f"/{b}/a/one.txt")
        r = conn.getresponse()
        _eq((r.status, b"<Code>AccessDenied</Code>" in r.read()), (403, True))
        # A header that was signed, changed after signing.
        st, body = signed_request(endpoint, "GET", f"/{b}/a/one.txt", headers={"x-amz-meta-a": "1"})
        _eq(st, 200)
    check("SigV4: wrong secret 403 SignatureDoesNotMatch, unknown key 403 InvalidAccessKeyId, anonymous 403",
          signatures)

    def digests():
        import base64
        body = b"digest me"
        good = base64.b64encode(hashlib.md5(body).digest()).decode()
        bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
        _eq(signed_request(endpoint, "PUT", f"/{b}/md5", body, {"Content-MD5": good})[0], 200)
        st, data = signed_request(endpoint, "PUT", f"/{b}/md5", body, {"Content-MD5": bad})
        _eq((st, b"<Code>BadDigest</Code>" in data), (400, True))
        st, data = signed_request(endpoint, "PUT", f"/{b}/sha", body, payload_hash=hashlib.sha256(b"x").hexdigest())
        _eq((st, b"<Code>XAmzContentSHA256Mismatch</Code>" in data), (400, True))
        _eq(code_of(lambda: s3.get_object(Bucket=b, Key="sha")), ("NoSuchKey", 404))
        st, _ = signed_request(endpoint, "PUT", f"/{b}/unsigned", body, payload_hash="UNSIGNED-PAYLOAD")
        _eq((st, s3.get_object(Bucket=b, Key="unsigned")["Body"].read()), (200, body))
    check("Content-MD5 (BadDigest 400), x-amz-content-sha256 mismatch 400, UNSIGNED-PAYLOAD", digests)

    def chunked():
        data = os.urandom(200000)
        hdr = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
        st, _ = signed_request(endpoint, "PUT", f"/{b}/chunked", headers=hdr,
                               payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD", sign_body=aws_chunked(data, 65536))
        _eq(st, 200)
        g = s3.get_object(Bucket=b, Key="chunked")
        _eq((g["Body"].read() == data, g["ETag"]), (True, '"%s"' % hashlib.md5(data).hexdigest()))
        st, body = signed_request(endpoint, "PUT", f"/{b}/chunked2", headers=hdr,
                                  payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                                  sign_body=aws_chunked(data, 65536, tamper=True))
        _eq((st, b"SignatureDoesNotMatch" in body), (403, True))
    check("aws-chunked upload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): decoded; a tampered chunk is 403", chunked)


def _eq(a, b):
    assert a == b, f"{a!r} != {b!r}"


OPS = r'''
import hashlib, os
import boto3
from botocore.exceptions import ClientError

def handler(event, context):
    b, P = event["bucket"], event["prefix"]
    # As the example functions do: the endpoint matters in baseline mode only.
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))
    r = {}
    s3.put_object(Bucket=b, Key=f"{P}/one.txt", Body=b"hello world", ContentType="text/plain")
    got = s3.get_object(Bucket=b, Key=f"{P}/one.txt")
    r["get"] = [got["Body"].read().decode(), got["ContentType"], got["ContentLength"]]
    r["range"] = s3.get_object(Bucket=b, Key=f"{P}/one.txt", Range="bytes=6-10")["Body"].read().decode()
    r["head"] = s3.head_object(Bucket=b, Key=f"{P}/one.txt")["ContentLength"]
    for k, f in (("get_missing", lambda: s3.get_object(Bucket=b, Key="missing")),
                 ("head_missing", lambda: s3.head_object(Bucket=b, Key="missing")),
                 ("other_bucket", lambda: s3.get_object(Bucket="no-such-bucket", Key="x"))):
        try:
            f()
            r[k] = "no error"
        except ClientError as e:
            r[k] = e.response["Error"]["Code"]
    s3.copy_object(Bucket=b, Key=f"{P}/two.txt", CopySource={"Bucket": b, "Key": f"{P}/one.txt"})
    r["copy"] = s3.get_object(Bucket=b, Key=f"{P}/two.txt")["Body"].read().decode()
    for i in range(7):
        s3.put_object(Bucket=b, Key=f"{P}/many/{i:02d}", Body=str(i).encode())
    keys = []
    for p in s3.get_paginator("list_objects_v2").paginate(Bucket=b, Prefix=f"{P}/many/", PaginationConfig={"PageSize": 2}):
        keys += [o["Key"] for o in p.get("Contents", [])]
    r["paginated"] = keys
    s3.delete_object(Bucket=b, Key=f"{P}/two.txt")
    r["after_delete"] = [o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix=f"{P}/").get("Contents", []) if "/many/" not in o["Key"]]
    data = os.urandom(3 << 20)
    s3.put_object(Bucket=b, Key=f"{P}/big", Body=data)
    back = s3.get_object(Bucket=b, Key=f"{P}/big")["Body"].read()
    r["big"] = hashlib.sha256(back).hexdigest() == hashlib.sha256(data).hexdigest()
    return r
'''

def want_for(P):
    return {"get": ["hello world", "text/plain", 11], "range": "world", "head": 11, "get_missing": "NoSuchKey",
        "head_missing": "404", "other_bucket": "NoSuchBucket", "copy": "hello world",
        "paginated": [f"{P}/many/{i:02d}" for i in range(7)], "after_delete": [f"{P}/one.txt"], "big": True}


def through_node():
    if os.geteuid() != 0:
        skips.append("nexusd's S3 client against the peer: needs root (process sandbox)")
        return
    # Where `nexus up` looks for it (cli/paths.c): NEXUS_ROOTFS, BUILD/rootfs, then build/rootfs.
    rootfs = os.environ.get("NEXUS_ROOTFS") or next(
        (d for d in (os.path.join(ROOT, os.environ.get("BUILD", "build"), "rootfs"), os.path.join(ROOT, "build", "rootfs"))
         if os.path.isdir(d)), None)
    if not rootfs or not os.path.isdir(os.path.join(rootfs, "usr", "bin")):
        skips.append("nexusd's S3 client against the peer: no guest rootfs (make rootfs)")
        return
    import tempfile
    import zipfile
    node = Node(s3="s3peer")
    try:
        node.up()
        node.s3().create_bucket(Bucket="nodetest")
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "app.py"), "w") as f:
            f.write(OPS)
        code = zip_dir(d)
        for mode in ("nexus", "baseline"):
            name = f"peer-ops-{mode}"
            node.deploy(name, code, mode, memory=256, timeout=60, buckets=["nodetest"])

            # nexus mode: nexusd refuses a bucket outside the function's allow-list
            # itself (AccessDenied) before any request reaches S3.
            want = dict(want_for(mode), other_bucket="AccessDenied" if mode == "nexus" else "NoSuchBucket")

            def run(name=name, want=want, mode=mode):
                _, out = node.invoke(name, {"bucket": "nodetest", "prefix": mode})
                _eq(json.loads(out), want)
            who = "nexusd's S3 client (shim + channel)" if mode == "nexus" else "boto3 in a baseline sandbox (relay)"
            check(f"{who} against the peer: put/get/range/head/errors/copy/paginate/delete/3 MiB", run)
        assert zipfile  # (zip_dir needs it imported in node)
    finally:
        node.down()


def main():
    print("test-s3peer: nexus-s3peer against boto3 (host)")
    log = os.path.join(RESULTS, "s3peer-test.log")
    os.makedirs(RESULTS, exist_ok=True)
    proc, endpoint = start_s3peer(log, threads=2)
    try:
        unit(endpoint)
        check("peer still running after every case", lambda: _eq(proc.poll(), None))
    finally:
        proc.terminate()
        proc.wait(10)
    print("test-s3peer: nexusd's S3 client and the baseline's boto3 against the peer (private node)")
    try:
        through_node()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        global failed
        failed += 1
    for s in skips:
        print(f"test-s3peer: SKIPPED: {s}")
    with open(os.path.join(RESULTS, "test-s3peer.counts"), "w") as f:
        f.write(f"passed={passed} failed={failed} skipped={len(skips)}\n")
        for s in skips:
            f.write(f"skip: {s}\n")
    print(f"test-s3peer: passed={passed} failed={failed} skipped={len(skips)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
