"""s3copy (tests/vm): copies one S3 object to another through the SDK calls (the shim in nexus
mode) and returns the SHA-256 and size of what it read, for the 1 MiB / 10 MiB cases."""
import hashlib
import os

import boto3

s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))


def handler(event, context):
    body = s3.get_object(Bucket=event["bucket"], Key=event["key"])["Body"].read()
    s3.put_object(Bucket=event["bucket"], Key=event["output_key"], Body=body)
    return {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
