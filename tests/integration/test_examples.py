"""Every example function end to end, with its output checked in S3."""
import collections
import hashlib
import io
import json
import os
import re

from conftest import FUNCTIONS, invoke


def fn_dir(name):
    return os.path.join(FUNCTIONS, name)


def event_for(name, bucket):
    ev = json.load(open(os.path.join(fn_dir(name), "event.json")))
    ev["bucket"] = bucket
    return ev


# The input file each example reads from S3 (functions/<name>/, uploaded where event.json says).
INPUTS = {"image-rotate": "input.png", "wordcount": "input.txt", "pyaes": "input.txt"}


def stage_input(s3, name, bucket):
    """Uploads the example's input to `bucket`; returns (its event for that bucket, the input bytes)."""
    data = open(os.path.join(fn_dir(name), INPUTS[name]), "rb").read()
    ev = event_for(name, bucket)
    s3.put_object(Bucket=bucket, Key=ev["key"], Body=data)
    return ev, data


def test_hello(lam, deploy):
    name = deploy(fn_dir("hello"))
    out, err, _ = invoke(lam, name, {"name": "Nexus"})
    assert err is None, out
    assert out["greeting"] == "Hello, Nexus!"
    assert out["function"] == name


def test_image_rotate(s3, lam, deploy, bucket):
    from PIL import Image
    ev, src = stage_input(s3, "image-rotate", bucket)
    name = deploy(fn_dir("image-rotate"), buckets=[bucket], timeout=30, memory=256)
    out, err, _ = invoke(lam, name, ev)
    assert err is None, out
    got = Image.open(io.BytesIO(s3.get_object(Bucket=bucket, Key=ev["output_key"])["Body"].read()))
    want = Image.open(io.BytesIO(src)).rotate(90, expand=True)
    assert got.size == want.size == tuple(out["size_out"])
    assert got.convert("RGBA").tobytes() == want.convert("RGBA").tobytes()


def test_wordcount(s3, lam, deploy, bucket):
    ev, text = stage_input(s3, "wordcount", bucket)
    name = deploy(fn_dir("wordcount"), buckets=[bucket], timeout=30)
    out, err, _ = invoke(lam, name, ev)
    assert err is None, out
    want = collections.Counter(re.findall(r"[a-z0-9']+", text.decode().lower()))
    got = json.loads(s3.get_object(Bucket=bucket, Key=ev["output_key"])["Body"].read())
    assert got == dict(want)
    assert out["words"] == sum(want.values()) and out["unique"] == len(want)
    assert [tuple(x) for x in out["top"]] == want.most_common(ev.get("top", 10))


def test_pyaes(s3, lam, deploy, bucket):
    import pyaes
    ev, plain = stage_input(s3, "pyaes", bucket)
    name = deploy(fn_dir("pyaes"), buckets=[bucket], timeout=60)
    out, err, _ = invoke(lam, name, ev)
    assert err is None, out
    cipher = s3.get_object(Bucket=bucket, Key=ev["output_key"])["Body"].read()
    assert hashlib.sha256(cipher).hexdigest() == out["sha256"] and len(cipher) == len(plain)
    key = hashlib.sha256(b"nexus pyaes example key").digest()
    dec = pyaes.AESModeOfOperationCTR(key, counter=pyaes.Counter(initial_value=0)).decrypt(cipher)
    assert dec == plain


def test_c_linecount_via_cli(node, s3, bucket):
    """The C example, deployed with `nexus deploy`: an executable bootstrap selects the custom runtime."""
    import subprocess
    from conftest import ROOT, BUILD, unique
    d = os.path.join(ROOT, BUILD, "functions", "c-linecount")
    assert os.access(os.path.join(d, "bootstrap"), os.X_OK), "c-linecount is not built (make all)"
    name = unique("clc")
    node.cli("deploy", d, "--name", name, "--buckets", bucket)
    try:
        ev = json.load(open(os.path.join(fn_dir("c-linecount"), "event.json")))
        ev["bucket"] = bucket
        out = json.loads(node.cli("invoke", name, "--payload", json.dumps(ev)).stdout)
        assert (out["lines"], out["words"], out["bytes"]) == (3, 6, 28)
        counts = json.loads(s3.get_object(Bucket=bucket, Key=ev["output_key"])["Body"].read())
        assert counts["lines"] == 3 and counts["words"] == 6
    finally:
        node.cli("delete", name, check=False)
