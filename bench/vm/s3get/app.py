"""bench/vm: N get_object calls of one object, each timed, in two ways from the same code.

- As a function (handler) deployed in a microVM in nexus mode: `import boto3` is the shim, so
  every get_object goes over the Nexus device to nexusd and on to the S3 server.
- As a program (`python3 app.py serve ENDPOINT PORT`) in the same guest image booted with
  virtio-net: `import boto3` is Debian's real boto3 talking HTTP to the same S3 server over
  the tap.  It answers each TCP connection's line "N BUCKET KEY" with the JSON of run().
Both read the whole body (Body.read()), as a function that uses the object would.
"""
import json
import os
import sys
import time

import boto3


def run(s3, bucket, key, n):
    us, size = [], 0
    for _ in range(n):
        t0 = time.perf_counter_ns()
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        us.append((time.perf_counter_ns() - t0) / 1000)
        size = len(body)
        del body
    return {"n": n, "bytes": size, "us": us, "boto3": boto3.__file__}


def handler(event, context):
    s3 = boto3.client("s3")
    return run(s3, event["bucket"], event["key"], int(event["n"]))


def serve(endpoint, port):
    import socket
    from botocore.config import Config
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
                      aws_secret_access_key="S3RVER", region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 0}))
    srv = socket.create_server(("0.0.0.0", port))
    print(f"s3get: serving on {port}, S3 at {endpoint}, boto3 {boto3.__version__}", flush=True)
    while True:
        c, _ = srv.accept()
        with c, c.makefile("rwb") as f:
            n, bucket, key = f.readline().decode().split()
            try:
                out = run(s3, bucket, key, int(n))
            except Exception as e:  # say it to the client instead of dying
                out = {"error": f"{type(e).__name__}: {e}"}
            f.write(json.dumps(out).encode() + b"\n")


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    serve(sys.argv[2], int(sys.argv[3]))
