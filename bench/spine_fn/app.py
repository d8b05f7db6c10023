"""bench/spine.py's storage probe: N x get_object(1 MiB).read(), timed inside the
handler.  The same code runs with the shim (nexus mode) and with the real boto3
over TCP (baseline mode, whose sandbox has a network)."""
import os
import time

import boto3

s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))


def handler(event, context):
    times = []
    size = 0
    for _ in range(int(event.get("n", 20))):
        t = time.perf_counter()
        body = s3.get_object(Bucket=event["bucket"], Key=event["key"])["Body"]
        size = len(body.read())
        body.close()
        times.append((time.perf_counter() - t) * 1e6)
    return {"us": times, "bytes": size}
