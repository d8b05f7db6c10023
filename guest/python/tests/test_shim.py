"""The boto3/botocore shim against the fake host, in process."""
import datetime
import io
import sys
import threading

import pytest

import boto3
import botocore
from botocore.exceptions import ClientError, NoCredentialsError, ParamValidationError
from conftest import host_buffers_released
from nexusrt import channel

B = "test-bucket"


def test_imports_are_the_shim():
    assert getattr(boto3, "NEXUS_SHIM", False) and getattr(botocore, "NEXUS_SHIM", False)
    assert "shim" in boto3.__file__ and "shim" in botocore.__file__
    # botocore proper (its session, endpoint, HTTP stack) is never loaded.
    assert "botocore.session" not in sys.modules and "urllib3" not in sys.modules
    assert issubclass(NoCredentialsError, Exception)


def test_put_get_roundtrip_and_metadata(host):
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url="http://ignored:1", config=object())
    r = s3.put_object(Bucket=B, Key="a.txt", Body=b"hello world", ContentType="text/plain")
    assert r["ETag"].startswith('"') and r["ResponseMetadata"]["HTTPStatusCode"] == 200
    got = s3.get_object(Bucket=B, Key="a.txt")
    assert got["ContentLength"] == 11 and got["ContentType"] == "text/plain" and got["ETag"] == r["ETag"]
    assert isinstance(got["LastModified"], datetime.datetime) and got["LastModified"].tzinfo is not None
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["Body"].read() == b"hello world"
    assert got["Body"].read() == b""
    assert s3.meta.region_name == "eu-west-1"
    assert host.s3.buckets[B]["a.txt"][0] == b"hello world"


def test_body_read_n_chunks_lines_and_context_manager(host):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=B, Key="lines", Body=b"one\ntwo\r\nthree\nlast")
    body = s3.get_object(Bucket=B, Key="lines")["Body"]
    assert body.read(3) == b"one" and body.tell() == 3
    assert body.read(2) == b"\nt"
    body.seek(0)
    assert list(body.iter_chunks(chunk_size=8)) == [b"one\ntwo\r", b"\nthree\nl", b"ast"]
    body.seek(0)
    assert list(body.iter_lines(chunk_size=3)) == [b"one", b"two", b"three", b"last"]
    with s3.get_object(Bucket=B, Key="lines")["Body"] as b2:
        assert next(iter(b2)) == b"one\ntwo\r\nthree\nlast"
    assert b2.closed
    with pytest.raises(ValueError):
        b2.read()
    buf = bytearray(5)
    b3 = s3.get_object(Bucket=B, Key="lines")["Body"]
    assert b3.readinto(buf) == 5 and bytes(buf) == b"one\nt"


def test_range_and_if_match(host):
    s3 = boto3.client("s3")
    etag = s3.put_object(Bucket=B, Key="r", Body=b"hello world")["ETag"]
    got = s3.get_object(Bucket=B, Key="r", Range="bytes=6-10")
    assert got["Body"].read() == b"world" and got["ContentRange"] == "bytes 6-10/11"
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=B, Key="r", IfMatch=etag)["Body"].read() == b"hello world"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=B, Key="r", IfMatch='"nope"')
    assert e.value.response["Error"]["Code"] == "PreconditionFailed"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_zero_copy_memoryview_and_release(host):
    s3 = boto3.client("s3")
    data = bytes(range(256)) * 4096  # 1 MiB
    s3.put_object(Bucket=B, Key="big", Body=data)
    body = s3.get_object(Bucket=B, Key="big")["Body"]
    mv = body.memoryview()
    assert mv.readonly and mv.nbytes == len(data) and mv[1000] == data[1000]
    # The view points into the shared region: it is not a copy.
    ch = channel.get()
    assert ch.base <= _address(mv) < ch.base + ch.size
    body.close()
    # Closing the body keeps the buffer alive while the memoryview lives ...
    assert mv[5] == 5 and len(host.alloc.live) >= 1
    del mv
    # ... and releases it (NX_OP_RELEASE) once nothing references it.
    assert host_buffers_released(host)


def _address(mv):
    """The address a memoryview points at (through the buffer protocol)."""
    import ctypes

    class Py_buffer(ctypes.Structure):
        _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.py_object), ("len", ctypes.c_ssize_t),
                    ("itemsize", ctypes.c_ssize_t), ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
                    ("format", ctypes.c_char_p), ("shape", ctypes.c_void_p), ("strides", ctypes.c_void_p),
                    ("suboffsets", ctypes.c_void_p), ("internal", ctypes.c_void_p)]
    pb = Py_buffer()
    ctypes.pythonapi.PyObject_GetBuffer.argtypes = [ctypes.py_object, ctypes.POINTER(Py_buffer), ctypes.c_int]
    ctypes.pythonapi.PyBuffer_Release.argtypes = [ctypes.POINTER(Py_buffer)]
    ctypes.pythonapi.PyObject_GetBuffer(mv, ctypes.byref(pb), 0)
    try:
        return pb.buf
    finally:
        ctypes.pythonapi.PyBuffer_Release(ctypes.byref(pb))


def test_bodies_released_by_gc_and_by_read(host):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=B, Key="k", Body=b"x" * 5000)
    for _ in range(50):
        assert len(s3.get_object(Bucket=B, Key="k")["Body"].read()) == 5000
    assert host_buffers_released(host)


def test_put_body_kinds(host, tmp_path):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=B, Key="s", Body="naïve text")
    s3.put_object(Bucket=B, Key="ba", Body=bytearray(b"bytearray"))
    s3.put_object(Bucket=B, Key="mv", Body=memoryview(b"0123456789")[2:5])
    s3.put_object(Bucket=B, Key="bio", Body=io.BytesIO(b"from bytesio"))
    p = tmp_path / "f.bin"
    p.write_bytes(b"F" * 100000)
    with open(p, "rb") as f:
        f.seek(10)
        s3.put_object(Bucket=B, Key="file", Body=f)
    s3.put_object(Bucket=B, Key="empty", Body=b"")
    s3.put_object(Bucket=B, Key="none")
    src = s3.get_object(Bucket=B, Key="bio")["Body"]
    s3.put_object(Bucket=B, Key="from-body", Body=src)
    objs = host.s3.buckets[B]
    assert objs["s"][0] == "naïve text".encode()
    assert objs["ba"][0] == b"bytearray" and objs["mv"][0] == b"234" and objs["bio"][0] == b"from bytesio"
    assert objs["file"][0] == b"F" * 99990 and objs["empty"][0] == b"" and objs["none"][0] == b""
    assert objs["from-body"][0] == b"from bytesio"


def test_errors_like_botocore(host):
    s3 = boto3.client("s3")
    with pytest.raises(s3.exceptions.NoSuchKey) as e:
        s3.get_object(Bucket=B, Key="missing")
    assert isinstance(e.value, ClientError)
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "An error occurred (NoSuchKey) when calling the GetObject operation" in str(e.value)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=B, Key="missing")
    assert e.value.response["Error"]["Code"] == "404"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="forbidden-bucket", Key="x")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.list_objects_v2(Bucket="ghost-bucket")
    with pytest.raises(ParamValidationError):
        s3.get_object(Bucket=B)
    assert host_buffers_released(host)


def test_unsupported_apis_name_themselves(host):
    s3 = boto3.client("s3")
    with pytest.raises(NotImplementedError, match="s3.put_bucket_policy"):
        s3.put_bucket_policy(Bucket=B, Policy="{}")
    with pytest.raises(NotImplementedError, match="parameter Metadata of s3.put_object"):
        s3.put_object(Bucket=B, Key="k", Body=b"", Metadata={"a": "b"})
    with pytest.raises(NotImplementedError, match=r"boto3.client\('lambda'\)"):
        boto3.client("lambda")
    with pytest.raises(NotImplementedError, match=r"boto3.resource\('dynamodb'\)"):
        boto3.resource("dynamodb")
    with pytest.raises(NotImplementedError, match="list_buckets"):
        s3.list_buckets()
    with pytest.raises(NotImplementedError, match="get_paginator"):
        s3.get_paginator("list_multipart_uploads")
    with pytest.raises(NotImplementedError, match="s3.Bucket.create"):
        boto3.resource("s3").Bucket(B).create()


def test_list_objects_v2_and_paginator(host):
    s3 = boto3.client("s3")
    for i in range(7):
        s3.put_object(Bucket=B, Key=f"many/{i:02d}", Body=str(i).encode())
    s3.put_object(Bucket=B, Key="a/x", Body=b"")
    s3.put_object(Bucket=B, Key="top", Body=b"")
    page = s3.list_objects_v2(Bucket=B, Prefix="many/", MaxKeys=3)
    assert [o["Key"] for o in page["Contents"]] == ["many/00", "many/01", "many/02"]
    assert page["IsTruncated"] and page["KeyCount"] == 3 and page["NextContinuationToken"]
    assert isinstance(page["Contents"][0]["LastModified"], datetime.datetime) and page["Contents"][0]["Size"] == 1
    nxt = s3.list_objects_v2(Bucket=B, Prefix="many/", ContinuationToken=page["NextContinuationToken"])
    assert [o["Key"] for o in nxt["Contents"]] == [f"many/{i:02d}" for i in range(3, 7)] and not nxt["IsTruncated"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=B, StartAfter="many/05")["Contents"]] == ["many/06", "top"]
    d = s3.list_objects_v2(Bucket=B, Delimiter="/")
    assert [p["Prefix"] for p in d["CommonPrefixes"]] == ["a/", "many/"] and [o["Key"] for o in d["Contents"]] == ["top"]
    assert "Contents" not in s3.list_objects_v2(Bucket=B, Prefix="nothing/")
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=B, Prefix="many/",
                                                              PaginationConfig={"PageSize": 2}))
    assert [len(p["Contents"]) for p in pages] == [2, 2, 2, 1]
    it = s3.get_paginator("list_objects_v2").paginate(Bucket=B, Prefix="many/", PaginationConfig={"MaxItems": 3, "PageSize": 2})
    assert [o["Key"] for p in it for o in p.get("Contents", [])] == ["many/00", "many/01", "many/02"]
    full = s3.get_paginator("list_objects_v2").paginate(Bucket=B).build_full_result()
    assert len(full["Contents"]) == 9
    assert list(s3.get_paginator("list_objects_v2").paginate(Bucket=B, Prefix="many/").search("Contents[].Key"))[:2] == ["many/00", "many/01"]
    v1 = s3.list_objects(Bucket=B, Prefix="many/", MaxKeys=2)
    assert v1["IsTruncated"] and v1["NextMarker"] == "many/01"
    assert [o["Key"] for p in s3.get_paginator("list_objects").paginate(Bucket=B, Prefix="many/", PaginationConfig={"PageSize": 3})
            for o in p["Contents"]] == [f"many/{i:02d}" for i in range(7)]
    assert s3.can_paginate("list_objects_v2") and not s3.can_paginate("list_buckets")


def test_copy_delete_head(host):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=B, Key="src", Body=b"copy me", ContentType="text/plain")
    r = s3.copy_object(Bucket=B, Key="dst", CopySource={"Bucket": B, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"]
    s3.copy_object(Bucket="other-bucket", Key="dst2", CopySource=f"{B}/src")
    assert host.s3.buckets["other-bucket"]["dst2"][0] == b"copy me"
    h = s3.head_object(Bucket=B, Key="dst")
    assert h["ContentLength"] == 7 and h["ContentType"] == "text/plain"
    s3.delete_object(Bucket=B, Key="dst")
    assert "dst" not in host.s3.buckets[B]
    r = s3.delete_objects(Bucket=B, Delete={"Objects": [{"Key": "src"}]})
    assert r["Deleted"] == [{"Key": "src"}] and host.s3.buckets[B] == {}
    s3.copy(CopySource={"Bucket": "other-bucket", "Key": "dst2"}, Bucket=B, Key="managed")
    assert host.s3.buckets[B]["managed"][0] == b"copy me"


def test_file_transfers(host, tmp_path):
    s3 = boto3.client("s3")
    up = tmp_path / "up.bin"
    up.write_bytes(b"file-body" * 1000)
    seen = []
    s3.upload_file(str(up), B, "files/up.bin", Callback=seen.append)
    assert seen == [9000]
    down = tmp_path / "down.bin"
    s3.download_file(B, "files/up.bin", str(down))
    assert down.read_bytes() == up.read_bytes()
    buf = io.BytesIO()
    s3.download_fileobj(B, "files/up.bin", buf)
    assert buf.getvalue() == up.read_bytes()
    s3.upload_fileobj(io.BytesIO(b"from-fileobj"), B, "files/fo.bin", ExtraArgs={"ContentType": "text/x"})
    assert host.s3.buckets[B]["files/fo.bin"] [0:2] == (b"from-fileobj", "text/x")
    with pytest.raises(ClientError) as e:
        s3.download_file(B, "files/missing", str(tmp_path / "nope"))
    assert e.value.response["Error"]["Code"] == "404" and not (tmp_path / "nope").exists()
    assert host_buffers_released(host)


def test_resource_api(host, tmp_path):
    res = boto3.resource("s3")
    assert res.meta.client.meta.service_model.service_name == "s3"
    bk = res.Bucket(B)
    obj = bk.put_object(Key="files/a", Body=b"AAA")
    assert obj.key == "files/a" and obj.bucket_name == B
    bk.put_object(Key="files/b", Body=b"BB")
    bk.put_object(Key="other/c", Body=b"C")
    assert sorted(o.key for o in bk.objects.filter(Prefix="files/")) == ["files/a", "files/b"]
    assert sorted((o.key, o.size) for o in bk.objects.all()) == [("files/a", 3), ("files/b", 2), ("other/c", 1)]
    assert len(list(bk.objects.all().limit(2))) == 2
    assert len(list(bk.objects.page_size(1))) == 3
    o = res.Object(B, "files/a")
    assert o.content_length == 3 and o.e_tag.startswith('"')
    assert isinstance(o.last_modified, datetime.datetime)
    assert o.get()["Body"].read() == b"AAA"
    o.put(Body=b"AAAA")
    o.load()
    assert o.content_length == 4
    p = tmp_path / "d"
    bk.download_file("files/b", str(p))
    assert p.read_bytes() == b"BB"
    bk.upload_file(str(p), "files/uploaded")
    assert bk.Object("files/uploaded").get()["Body"].read() == b"BB"
    o.delete()
    with pytest.raises(ClientError):
        o.load()
    summary = next(iter(bk.objects.filter(Prefix="other/")))
    assert summary.get()["Body"].read() == b"C"
    bk.objects.filter(Prefix="files/").delete()
    assert sorted(host.s3.buckets[B]) == ["other/c"]
    s = boto3.session.Session(region_name="us-west-2")
    assert s.client("s3").meta.region_name == "us-west-2"
    assert boto3.Session().resource("s3").Bucket("x").name == "x"


def test_concurrent_threads(host):
    s3 = boto3.client("s3")
    errors = []

    def work(i):
        try:
            for j in range(20):
                key = f"t{i}/{j}"
                data = (f"{i}-{j}-" * 100).encode()
                s3.put_object(Bucket=B, Key=key, Body=data)
                assert s3.get_object(Bucket=B, Key=key)["Body"].read() == data
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert errors == [] and len(host.s3.buckets[B]) == 160
    assert host_buffers_released(host)


def test_object_larger_than_guest_arena_is_a_clear_error(host):
    s3 = boto3.client("s3")
    with pytest.raises(channel.ChannelError, match="guest arena"):
        s3.put_object(Bucket=B, Key="huge", Body=b"\0" * (64 << 20))


def test_body_works_with_common_stream_consumers(host):
    """Idioms user code applies to get_object()["Body"] with real boto3."""
    import codecs
    import csv
    import gzip
    import json as _json
    import zipfile
    s3 = boto3.client("s3")
    s3.put_object(Bucket=B, Key="d.json", Body=b'{"a": [1, 2]}')
    assert _json.load(s3.get_object(Bucket=B, Key="d.json")["Body"]) == {"a": [1, 2]}
    s3.put_object(Bucket=B, Key="t.csv", Body="x,y\n1,é\n".encode())
    rows = list(csv.reader(codecs.getreader("utf-8")(s3.get_object(Bucket=B, Key="t.csv")["Body"])))
    assert rows == [["x", "y"], ["1", "é"]]
    text = io.TextIOWrapper(s3.get_object(Bucket=B, Key="t.csv")["Body"], encoding="utf-8")
    assert text.readline() == "x,y\n" and text.read() == "1,é\n"
    s3.put_object(Bucket=B, Key="g.gz", Body=gzip.compress(b"zipped " * 1000))
    with gzip.GzipFile(fileobj=s3.get_object(Bucket=B, Key="g.gz")["Body"]) as g:
        assert g.read() == b"zipped " * 1000
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("inner.txt", "inside")
    s3.put_object(Bucket=B, Key="z.zip", Body=buf.getvalue())
    with zipfile.ZipFile(s3.get_object(Bucket=B, Key="z.zip")["Body"]) as z:
        assert z.read("inner.txt") == b"inside"
    body = s3.get_object(Bucket=B, Key="t.csv")["Body"]
    assert body.readline() == b"x,y\n" and body.readlines() == [b"1,\xc3\xa9\n"]
    import hashlib
    assert hashlib.md5(s3.get_object(Bucket=B, Key="d.json")["Body"].memoryview()).hexdigest() == \
        hashlib.md5(b'{"a": [1, 2]}').hexdigest()


def test_put_body_from_wrappers_and_pipes(host, tmp_path):
    import gzip
    import os as _os
    s3 = boto3.client("s3")
    gz = tmp_path / "f.gz"
    with gzip.open(gz, "wb") as f:
        f.write(b"decompressed " * 5000)
    with gzip.open(gz, "rb") as f:          # fileno() is the compressed file's
        s3.put_object(Bucket=B, Key="gz", Body=f)
    assert host.s3.buckets[B]["gz"][0] == b"decompressed " * 5000
    r, w = _os.pipe()
    _os.write(w, b"through a pipe")
    _os.close(w)
    with open(r, "rb") as f:                 # fstat size of a pipe is 0
        s3.upload_fileobj(f, B, "pipe")
    assert host.s3.buckets[B]["pipe"][0] == b"through a pipe"


def test_forked_child_gets_a_clear_error(host):
    import os as _os
    s3 = boto3.client("s3")
    s3.put_object(Bucket=B, Key="f", Body=b"parent")
    body = s3.get_object(Bucket=B, Key="f")["Body"]
    r, w = _os.pipe()
    pid = _os.fork()
    if pid == 0:
        try:
            s3.get_object(Bucket=B, Key="f")
            msg = b"no error"
        except Exception as e:  # noqa: BLE001
            msg = str(e).encode()[:200]
        _os.write(w, msg)
        _os._exit(0)
    _os.close(w)
    msg = _os.read(r, 300)
    _os.waitpid(pid, 0)
    assert b"forked from the runtime" in msg
    assert body.read() == b"parent"       # the parent's channel still works
    del body
    assert host_buffers_released(host)


def test_host_arena_full_is_slowdown_then_recovers(host):
    """Bodies kept alive fill the host arena: nexusd answers NO_SPACE, the
    shim raises ClientError SlowDown; releasing them makes room again."""
    s3 = boto3.client("s3")
    s3.put_object(Bucket=B, Key="4m", Body=b"\1" * (4 << 20))
    kept = []
    with pytest.raises(ClientError) as e:
        for _ in range(64):    # the host arena is ~16 MiB
            kept.append(s3.get_object(Bucket=B, Key="4m")["Body"])
    assert e.value.response["Error"]["Code"] == "SlowDown" and 2 <= len(kept) < 64
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    kept.clear()
    assert host_buffers_released(host)
    assert len(s3.get_object(Bucket=B, Key="4m")["Body"].read()) == 4 << 20


def test_head_bucket(host):
    s3 = boto3.client("s3")
    assert s3.head_bucket(Bucket=B)["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="ghost-bucket")
    assert e.value.response["Error"]["Code"] == "404"
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="not-allowed")
    assert e.value.response["Error"]["Code"] == "403"
