"""Test function for guest-realhost: S3 through nexusd's real chan.c."""
import hashlib
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.exceptions import ClientError

s3 = boto3.client("s3")


def handler(event, context):
    b = "test-bucket"
    n = event.get("size", 100000)
    data = (context.aws_request_id.encode() * (n // 8 + 1))[:n]
    s3.put_object(Bucket=b, Key=f"obj/{context.aws_request_id}", Body=data, ContentType="x/y")
    got = s3.get_object(Bucket=b, Key=f"obj/{context.aws_request_id}")
    view = got["Body"].memoryview()
    same = hashlib.sha256(view).digest() == hashlib.sha256(data).digest() and got["ContentType"] == "x/y"
    part = s3.get_object(Bucket=b, Key=f"obj/{context.aws_request_id}", Range="bytes=1-4")["Body"].read()
    try:
        s3.head_object(Bucket=b, Key="missing")
        missing = "no error"
    except ClientError as e:
        missing = e.response["Error"]["Code"]
    try:
        s3.get_object(Bucket="not-allowed", Key="x")
        denied = "no error"
    except ClientError as e:
        denied = e.response["Error"]["Code"]
    s3.copy_object(Bucket=b, Key=f"copy/{context.aws_request_id}", CopySource=f"{b}/obj/{context.aws_request_id}")
    keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=b, Prefix="copy/",
                                                                          PaginationConfig={"PageSize": 3})
            for o in p.get("Contents", [])]
    s3.delete_object(Bucket=b, Key=f"copy/{context.aws_request_id}")
    threads = event.get("threads", 0)
    parallel_ok = True
    if threads:
        def one(i):
            k = f"par/{context.aws_request_id}/{i}"
            blob = bytes([i % 251]) * (1000 + i)
            s3.put_object(Bucket=b, Key=k, Body=blob)
            back = s3.get_object(Bucket=b, Key=k)["Body"].read()
            s3.delete_object(Bucket=b, Key=k)
            return back == blob
        with ThreadPoolExecutor(threads) as ex:
            parallel_ok = all(ex.map(one, range(threads * 4)))
    ok = parallel_ok and same and part == data[1:5] and missing == "404" and denied == "AccessDenied" and \
        f"copy/{context.aws_request_id}" in keys
    return {"ok": "all-good" if ok else "BROKEN", "same": same, "parallel": parallel_ok, "missing": missing, "denied": denied,
            "listed": len(keys)}
