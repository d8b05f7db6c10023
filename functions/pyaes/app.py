"""pyaes: reads an object from S3, encrypts it with AES-256 in CTR mode using
the pure-Python `pyaes` package (CPU-bound, like vSwarm's pyaes) and writes the
ciphertext back to S3."""
import hashlib
import os

import boto3
import pyaes

s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))
# A demo key: a real function would take it from a secret store.
DEFAULT_KEY = hashlib.sha256(b"nexus pyaes example key").digest()


def handler(event, context):
    bucket, key = event["bucket"], event["key"]
    out_key = event.get("output_key") or f"encrypted/{key}"
    aes_key = bytes.fromhex(event["key_hex"]) if event.get("key_hex") else DEFAULT_KEY
    plaintext = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    ctr = pyaes.Counter(initial_value=int(event.get("nonce", 0)))
    ciphertext = pyaes.AESModeOfOperationCTR(aes_key, counter=ctr).encrypt(plaintext)
    s3.put_object(Bucket=bucket, Key=out_key, Body=ciphertext, ContentType="application/octet-stream")
    return {"input": key, "output": out_key, "bytes": len(ciphertext),
            "sha256": hashlib.sha256(ciphertext).hexdigest()}
