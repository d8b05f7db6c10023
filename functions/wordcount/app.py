"""wordcount: reads a text object from S3, counts its words and writes the
counts as JSON to another object; returns the most frequent words."""
import collections
import json
import os
import re

import boto3

s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))
WORD = re.compile(r"[a-z0-9']+")


def handler(event, context):
    bucket, key = event["bucket"], event["key"]
    out_key = event.get("output_key") or f"wordcount/{key}.json"
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", errors="replace")
    counts = collections.Counter(WORD.findall(text.lower()))
    s3.put_object(Bucket=bucket, Key=out_key, Body=json.dumps(counts, sort_keys=True).encode(),
                  ContentType="application/json")
    top = counts.most_common(int(event.get("top", 10)))
    return {"input": key, "output": out_key, "words": sum(counts.values()), "unique": len(counts),
            "top": [[w, n] for w, n in top]}
