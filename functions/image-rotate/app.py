"""image-rotate: reads an image from S3, rotates it 90 degrees with Pillow and
writes it back — an S3 round trip with a binary body in both directions."""
import io
import os

import boto3
from PIL import Image

# Plain boto3.  The endpoint is only used in baseline mode (real boto3 against
# a local S3); in nexus mode the shim ignores it and nexusd does the I/O.
s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))


def handler(event, context):
    bucket, key = event["bucket"], event["key"]
    out_key = event.get("output_key") or f"rotated/{key}"
    obj = s3.get_object(Bucket=bucket, Key=key)
    img = Image.open(io.BytesIO(obj["Body"].read()))
    fmt = img.format or "PNG"
    rotated = img.rotate(event.get("degrees", 90), expand=True)
    out = io.BytesIO()
    rotated.save(out, format=fmt)
    s3.put_object(Bucket=bucket, Key=out_key, Body=out.getvalue(), ContentType=Image.MIME.get(fmt, "image/png"))
    return {"input": key, "output": out_key, "format": fmt, "size_in": list(img.size),
            "size_out": list(rotated.size), "bytes_out": out.tell()}
