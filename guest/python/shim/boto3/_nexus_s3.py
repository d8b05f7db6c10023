"""The S3 client of the nexus boto3 shim: each supported call becomes one
request on the Nexus channel (nexusrt.channel); nexusd does the real S3 call.

Supported surface (anything else raises NotImplementedError naming it):
get_object, put_object, head_object, delete_object, delete_objects,
list_objects_v2, list_objects, copy_object, copy, upload_file, download_file,
upload_fileobj, download_fileobj, get_paginator('list_objects_v2' |
'list_objects'), can_paginate, close, exceptions, meta.
"""
import datetime
import io
import os
import stat
import types

from botocore.exceptions import ClientError, ParamValidationError, PaginationError
from botocore.response import StreamingBody
from nexusrt import channel as nx

SUPPORTED = ("get_object", "put_object", "head_object", "head_bucket", "delete_object", "delete_objects", "list_objects_v2",
             "list_objects", "copy_object", "copy", "upload_file", "download_file", "upload_fileobj",
             "download_fileobj", "get_paginator", "can_paginate", "close")

# Parameters accepted and ignored everywhere: they change nothing nexusd does.
_IGNORED = {"ExpectedBucketOwner", "RequestPayer", "ChecksumMode", "ChecksumAlgorithm", "ContentMD5",
            "ExpectedSourceBucketOwner", "EncodingType", "FetchOwner", "ContentLength"}

# Modelled S3 errors that botocore exposes as client.exceptions.<Code>.
_MODELED = ("NoSuchKey", "NoSuchBucket", "NoSuchUpload", "BucketAlreadyExists", "BucketAlreadyOwnedByYou",
            "InvalidObjectState", "ObjectAlreadyInActiveTierError", "ObjectNotInActiveTierError")
_ERROR_CLASSES = {code: type(code, (ClientError,), {"__module__": "botocore.errorfactory"}) for code in _MODELED}

# Channel statuses without storage metadata -> (Code, HTTP status, Message).
_STATUS_ERRORS = {
    nx.S_STORAGE_ERROR: ("InternalError", 500, "storage returned an error"),
    nx.S_ACCESS_DENIED: ("AccessDenied", 403, "Access Denied (the bucket is not in this function's nexus:buckets)"),
    nx.S_INVALID: ("InvalidRequest", 400, "nexusd rejected the request as malformed"),
    nx.S_NO_SPACE: ("SlowDown", 503, "nexus: the function's region is full; close unused response bodies"),
    nx.S_UNSUPPORTED: ("NotImplemented", 501, "nexusd does not support this operation"),
    nx.S_IO_ERROR: ("ServiceUnavailable", 503, "storage unreachable after retries"),
    nx.S_TOO_LARGE: ("EntityTooLarge", 400, "object or payload over the nexus size limit"),
}
_HTTP_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
                 412: "Precondition Failed", 416: "Requested Range Not Satisfiable", 500: "Internal Server Error",
                 501: "Not Implemented", 503: "Service Unavailable"}


class _Exceptions:
    """client.exceptions: the modelled error classes plus ClientError."""
    ClientError = ClientError

    def __init__(self):
        for code, cls in _ERROR_CLASSES.items():
            setattr(self, code, cls)

    def from_code(self, code):
        return _ERROR_CLASSES.get(code, ClientError)


EXCEPTIONS = _Exceptions()


def unsupported(what, hint=""):
    return NotImplementedError(f"nexus boto3 shim: {what} is not supported in nexus mode{hint} "
                               f"(supported S3 client methods: {', '.join(SUPPORTED)}; see docs/functions.md)")


def _timestamp(s):
    if not isinstance(s, str) or not s:
        return s
    try:
        d = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        import email.utils
        try:
            d = email.utils.parsedate_to_datetime(s)
        except (TypeError, ValueError):
            return s
    return d if d.tzinfo else d.replace(tzinfo=datetime.timezone.utc)


def _response_metadata(status=200, meta=None):
    rid = (meta or {}).get("RequestId", "")
    return {"RequestId": rid, "HostId": "", "HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0}


def _check_params(op, kwargs, required, optional):
    missing = [p for p in required if kwargs.get(p) is None]
    if missing:
        raise ParamValidationError(report="\n".join(f'Missing required parameter in input: "{p}"' for p in missing))
    for k in kwargs:
        if k not in required and k not in optional and k not in _IGNORED:
            raise unsupported(f"parameter {k} of s3.{op}")


def _raise_for(op_name, rep, head=False):
    meta = rep.meta or {}
    code, http, msg = _STATUS_ERRORS.get(rep.status, ("InternalError", 500, f"nexus status {rep.status}"))
    if rep.status != nx.S_NO_SPACE:       # region full: always SlowDown, whatever nexusd called it
        code = meta.get("Code") or code
    try:
        status_code = int(meta.get("HTTPStatusCode") or 0)
    except (TypeError, ValueError):
        status_code = 0
    if status_code >= 400:                # else the failure was not storage's answer
        http = status_code
    msg = meta.get("Message") or msg
    if head:
        # HEAD responses have no body: botocore reports the status code itself.
        code, msg = str(http), _HTTP_REASONS.get(http, msg)
    resp = {"Error": {"Code": code, "Message": msg}, "ResponseMetadata": _response_metadata(http, meta)}
    for k in ("Key", "BucketName", "Resource"):
        if k in meta:
            resp["Error"][k] = meta[k]
    raise EXCEPTIONS.from_code(code)(resp, op_name)


def _copy_source(src):
    if isinstance(src, dict):
        if "VersionId" in src:
            raise unsupported("CopySource VersionId")
        return src["Bucket"], src["Key"]
    if isinstance(src, str):
        s = src.lstrip("/")
        if "?versionId=" in s:
            raise unsupported("CopySource versionId")
        b, _, k = s.partition("/")
        if not b or not k:
            raise ParamValidationError(report=f"Invalid CopySource {src!r}: expected 'bucket/key'")
        from urllib.parse import unquote
        return b, unquote(k)
    raise ParamValidationError(report="CopySource must be a dict {'Bucket','Key'} or a 'bucket/key' string")


def _body_source(body):
    """Classify a PUT body: ('buffer', bytes-like) or ('reader', (length, readinto))."""
    if body is None:
        return "buffer", b""
    if isinstance(body, str):
        return "buffer", body.encode("utf-8")
    if isinstance(body, StreamingBody):
        return "buffer", body.memoryview()[body.tell():]
    if isinstance(body, (bytes, bytearray, memoryview)):
        return "buffer", body
    if hasattr(body, "read"):
        length = None
        # fstat only for plain files: a wrapper (GzipFile, ...) reports the
        # fileno of what it wraps, and pipes report size 0.
        if isinstance(body, (io.BufferedReader, io.FileIO)):
            try:
                st = os.fstat(body.fileno())
                if stat.S_ISREG(st.st_mode):
                    length = st.st_size - body.tell()
            except (OSError, ValueError):
                length = None
        if length is None and hasattr(body, "seek") and hasattr(body, "tell"):
            try:
                here = body.tell()
                end = body.seek(0, os.SEEK_END)
                body.seek(here)
                length = end - here
            except (OSError, ValueError):
                length = None
        if length is not None and length >= 0 and hasattr(body, "readinto"):
            return "reader", (length, body.readinto)
        data = body.read()
        return "buffer", data.encode("utf-8") if isinstance(data, str) else data
    try:
        return "buffer", memoryview(body)
    except TypeError:
        raise ParamValidationError(report=f"Invalid type for parameter Body, value: {type(body).__name__}, "
                                   "valid types: bytes, bytearray, file-like object") from None


class S3Client:
    """What boto3.client('s3') returns in nexus mode."""

    def __init__(self, region_name=None, endpoint_url=None, **_ignored):
        region = region_name or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.meta = types.SimpleNamespace(region_name=region, endpoint_url=endpoint_url or "nexus://channel",
                                          service_model=types.SimpleNamespace(service_name="s3"),
                                          config=_ignored.get("config"))
        self.exceptions = EXCEPTIONS

    def __repr__(self):
        return "<nexus S3 client>"

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def not_supported(*args, **kwargs):
            raise unsupported(f"s3.{name}")
        not_supported.__name__ = name
        return not_supported

    @staticmethod
    def _ch():
        return nx.get()

    # ------------------------------------------------------------- objects
    def get_object(self, **kw):
        _check_params("get_object", kw, ("Bucket", "Key"), ("Range", "IfMatch"))
        rep = self._ch().call(nx.OP_S3_GET, nx.tlv((nx.ARG_BUCKET, kw["Bucket"]), (nx.ARG_KEY, kw["Key"]),
                                                   (nx.ARG_RANGE, kw.get("Range")),
                                                   (nx.ARG_IF_MATCH, kw.get("IfMatch"))))
        if rep.status != nx.S_OK:
            _raise_for("GetObject", rep)
        m = rep.meta
        body = StreamingBody(rep.body)
        out = {"Body": body, "ContentLength": int(m.get("ContentLength", len(rep.body or b""))),
               "ETag": m.get("ETag", ""), "ContentType": m.get("ContentType", "binary/octet-stream"),
               "LastModified": _timestamp(m.get("LastModified")), "AcceptRanges": "bytes", "Metadata": {},
               "ResponseMetadata": _response_metadata(206 if m.get("ContentRange") else 200, m)}
        if m.get("ContentRange"):
            out["ContentRange"] = m["ContentRange"]
        return out

    def put_object(self, **kw):
        return self._put(kw)[0]

    def _put(self, kw):
        """put_object, also returning the number of bytes sent."""
        _check_params("put_object", kw, ("Bucket", "Key"), ("Body", "ContentType"))
        args = nx.tlv((nx.ARG_BUCKET, kw["Bucket"]), (nx.ARG_KEY, kw["Key"]),
                      (nx.ARG_CONTENT_TYPE, kw.get("ContentType")))
        kind, src = _body_source(kw.get("Body"))
        ch = self._ch()
        if kind == "reader":
            n = src[0]
            rep = ch.call_with_reader(nx.OP_S3_PUT, args, src[0], src[1])
        else:
            n = memoryview(src).nbytes
            rep = ch.call_with_body(nx.OP_S3_PUT, args, src)
        if rep.status != nx.S_OK:
            _raise_for("PutObject", rep)
        return {"ETag": rep.meta.get("ETag", ""), "ResponseMetadata": _response_metadata(200, rep.meta)}, n

    def head_object(self, **kw):
        _check_params("head_object", kw, ("Bucket", "Key"), ())
        rep = self._ch().call(nx.OP_S3_HEAD, nx.tlv((nx.ARG_BUCKET, kw["Bucket"]), (nx.ARG_KEY, kw["Key"])))
        if rep.status != nx.S_OK:
            _raise_for("HeadObject", rep, head=True)
        m = rep.meta
        return {"ContentLength": int(m.get("ContentLength", 0)), "ETag": m.get("ETag", ""),
                "ContentType": m.get("ContentType", "binary/octet-stream"),
                "LastModified": _timestamp(m.get("LastModified")), "AcceptRanges": "bytes", "Metadata": {},
                "ResponseMetadata": _response_metadata(200, m)}

    def delete_object(self, **kw):
        _check_params("delete_object", kw, ("Bucket", "Key"), ())
        rep = self._ch().call(nx.OP_S3_DELETE, nx.tlv((nx.ARG_BUCKET, kw["Bucket"]), (nx.ARG_KEY, kw["Key"])))
        if rep.status != nx.S_OK:
            _raise_for("DeleteObject", rep)
        return {"ResponseMetadata": _response_metadata(204, rep.meta)}

    def delete_objects(self, **kw):
        """One DELETE per key over the channel (there is no batch opcode)."""
        _check_params("delete_objects", kw, ("Bucket", "Delete"), ())
        deleted, errors = [], []
        for o in kw["Delete"].get("Objects", []):
            try:
                self.delete_object(Bucket=kw["Bucket"], Key=o["Key"])
                deleted.append({"Key": o["Key"]})
            except ClientError as e:
                errors.append({"Key": o["Key"], "Code": e.response["Error"]["Code"],
                               "Message": e.response["Error"]["Message"]})
        out = {"ResponseMetadata": _response_metadata(200)}
        if deleted and not kw["Delete"].get("Quiet"):
            out["Deleted"] = deleted
        if errors:
            out["Errors"] = errors
        return out

    def copy_object(self, **kw):
        _check_params("copy_object", kw, ("Bucket", "Key", "CopySource"), ())
        sb, sk = _copy_source(kw["CopySource"])
        rep = self._ch().call(nx.OP_S3_COPY, nx.tlv((nx.ARG_SRC_BUCKET, sb), (nx.ARG_SRC_KEY, sk),
                                                    (nx.ARG_BUCKET, kw["Bucket"]), (nx.ARG_KEY, kw["Key"])))
        if rep.status != nx.S_OK:
            _raise_for("CopyObject", rep)
        m = rep.meta
        return {"CopyObjectResult": {"ETag": m.get("ETag", ""), "LastModified": _timestamp(m.get("LastModified"))},
                "ResponseMetadata": _response_metadata(200, m)}

    def copy(self, CopySource, Bucket, Key, ExtraArgs=None, Callback=None, SourceClient=None, Config=None):
        if ExtraArgs:
            raise unsupported(f"s3.copy ExtraArgs {sorted(ExtraArgs)}")
        self.copy_object(Bucket=Bucket, Key=Key, CopySource=CopySource)

    # ------------------------------------------------------------- listing
    def list_objects_v2(self, **kw):
        _check_params("list_objects_v2", kw, ("Bucket",),
                      ("Prefix", "Delimiter", "MaxKeys", "ContinuationToken", "StartAfter"))
        b = kw["Bucket"]
        rep = self._ch().call(nx.OP_S3_LIST, nx.tlv(
            (nx.ARG_BUCKET, b), (nx.ARG_PREFIX, kw.get("Prefix") or None),
            (nx.ARG_DELIMITER, kw.get("Delimiter") or None),
            (nx.ARG_CONT_TOKEN, kw.get("ContinuationToken") or None),
            (nx.ARG_START_AFTER, kw.get("StartAfter") or None),
            # S3 caps MaxKeys at 1000 rather than refusing more; nexusd refuses.
            (nx.ARG_MAX_KEYS, max(0, min(int(kw["MaxKeys"]), 1000)) if kw.get("MaxKeys") is not None else None)))
        if rep.status != nx.S_OK:
            _raise_for("ListObjectsV2", rep)
        m = rep.meta
        contents = [{"Key": o.get("Key"), "LastModified": _timestamp(o.get("LastModified")), "ETag": o.get("ETag", ""),
                     "Size": int(o.get("Size", 0)), "StorageClass": o.get("StorageClass", "STANDARD")}
                    for o in m.get("Contents") or []]
        prefixes = [{"Prefix": p.get("Prefix")} for p in m.get("CommonPrefixes") or []]
        out = {"IsTruncated": bool(m.get("IsTruncated")), "Name": b, "Prefix": kw.get("Prefix") or "",
               "MaxKeys": int(kw.get("MaxKeys") or 1000),
               "KeyCount": int(m.get("KeyCount", len(contents) + len(prefixes))),
               "ResponseMetadata": _response_metadata(200, m)}
        if contents:
            out["Contents"] = contents
        if kw.get("Delimiter"):
            out["Delimiter"] = kw["Delimiter"]
        if prefixes:
            out["CommonPrefixes"] = prefixes
        if kw.get("ContinuationToken"):
            out["ContinuationToken"] = kw["ContinuationToken"]
        if m.get("NextContinuationToken"):
            out["NextContinuationToken"] = m["NextContinuationToken"]
        if kw.get("StartAfter"):
            out["StartAfter"] = kw["StartAfter"]
        return out

    def head_bucket(self, **kw):
        """A one-key listing: answers like HeadBucket (Code '404' / '403')."""
        _check_params("head_bucket", kw, ("Bucket",), ())
        rep = self._ch().call(nx.OP_S3_LIST, nx.tlv((nx.ARG_BUCKET, kw["Bucket"]), (nx.ARG_MAX_KEYS, 1)))
        if rep.status != nx.S_OK:
            _raise_for("HeadBucket", rep, head=True)
        return {"ResponseMetadata": _response_metadata(200, rep.meta)}

    def list_objects(self, **kw):
        """ListObjects (v1) on top of v2: Marker becomes StartAfter."""
        _check_params("list_objects", kw, ("Bucket",), ("Prefix", "Delimiter", "MaxKeys", "Marker"))
        v2 = {k: kw[k] for k in ("Bucket", "Prefix", "Delimiter", "MaxKeys") if kw.get(k) is not None}
        if kw.get("Marker"):
            v2["StartAfter"] = kw["Marker"]
        r = self.list_objects_v2(**v2)
        out = {k: r[k] for k in ("IsTruncated", "Name", "Prefix", "MaxKeys", "ResponseMetadata", "Contents",
                                 "Delimiter", "CommonPrefixes") if k in r}
        out["Marker"] = kw.get("Marker") or ""
        if r["IsTruncated"]:
            last = [o["Key"] for o in r.get("Contents", [])] + [p["Prefix"] for p in r.get("CommonPrefixes", [])]
            if last:
                out["NextMarker"] = max(last)
        return out

    def get_paginator(self, operation_name):
        if operation_name not in _PAGINATED:
            raise unsupported(f"s3.get_paginator({operation_name!r})", " (paginators: list_objects_v2, list_objects)")
        return Paginator(self, operation_name)

    def can_paginate(self, operation_name):
        return operation_name in _PAGINATED

    # ------------------------------------------------------------- transfers
    def upload_file(self, Filename, Bucket, Key, ExtraArgs=None, Callback=None, Config=None):
        with open(Filename, "rb") as f:
            self.upload_fileobj(f, Bucket, Key, ExtraArgs=ExtraArgs, Callback=Callback, Config=Config)

    def upload_fileobj(self, Fileobj, Bucket, Key, ExtraArgs=None, Callback=None, Config=None):
        extra = dict(ExtraArgs or {})
        ctype = extra.pop("ContentType", None)
        if extra:
            raise unsupported(f"s3.upload_fileobj ExtraArgs {sorted(extra)}", " (supported: ContentType)")
        kwargs = {"Bucket": Bucket, "Key": Key, "Body": Fileobj}
        if ctype:
            kwargs["ContentType"] = ctype
        n = self._put(kwargs)[1]
        if Callback is not None:
            Callback(n)

    def download_file(self, Bucket, Key, Filename, ExtraArgs=None, Callback=None, Config=None):
        tmp = f"{Filename}.nexus-{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                self.download_fileobj(Bucket, Key, f, ExtraArgs=ExtraArgs, Callback=Callback, Config=Config)
            os.replace(tmp, Filename)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def download_fileobj(self, Bucket, Key, Fileobj, ExtraArgs=None, Callback=None, Config=None):
        if ExtraArgs:
            raise unsupported(f"s3.download_fileobj ExtraArgs {sorted(ExtraArgs)}")
        try:
            r = self.get_object(Bucket=Bucket, Key=Key)
        except ClientError as e:
            # s3transfer does a HEAD first, so boto3 reports a missing key as 404.
            if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
                resp = {"Error": {"Code": "404", "Message": "Not Found"},
                        "ResponseMetadata": _response_metadata(404)}
                raise ClientError(resp, "HeadObject") from None
            raise
        with r["Body"] as body:
            view = body.memoryview()
            Fileobj.write(view)   # straight from the region, no intermediate bytes
            n = len(view)
            del view
        if Callback is not None:
            Callback(n)

    def close(self):
        """Nothing to close: the channel belongs to the runtime."""


_PAGINATED = {"list_objects_v2": ("ContinuationToken", "NextContinuationToken"),
              "list_objects": ("Marker", "NextMarker")}


class Paginator:
    def __init__(self, client, operation_name):
        self._client, self._op = client, operation_name

    def paginate(self, **kwargs):
        return PageIterator(self._client, self._op, kwargs)


class PageIterator:
    def __init__(self, client, op, kwargs):
        self._client, self._op = client, op
        kwargs = dict(kwargs)
        cfg = kwargs.pop("PaginationConfig", None) or {}
        self._max_items = cfg.get("MaxItems")
        self._page_size = cfg.get("PageSize")
        self._token = cfg.get("StartingToken")
        self._kwargs = kwargs
        self.resume_token = None

    def __iter__(self):
        in_key, out_key = _PAGINATED[self._op]
        kwargs = dict(self._kwargs)
        if self._page_size:
            kwargs["MaxKeys"] = int(self._page_size)
        token, seen = self._token, 0
        fn = getattr(self._client, self._op)
        while True:
            if token:
                kwargs[in_key] = token
            page = fn(**kwargs)
            items = page.get("Contents", [])
            if self._max_items is not None and seen + len(items) >= int(self._max_items):
                keep = int(self._max_items) - seen
                if keep < len(items) or page.get("IsTruncated"):
                    page["Contents"] = items[:keep]
                    self.resume_token = items[keep - 1]["Key"] if keep else token
                yield page
                return
            seen += len(items)
            yield page
            token = page.get(out_key)
            if not page.get("IsTruncated"):
                return
            if not token:
                if self._op == "list_objects" and items:
                    token = items[-1]["Key"]
                else:
                    raise PaginationError(message="truncated page without a continuation token")

    def build_full_result(self):
        out = {}
        for page in self:
            for k in ("Contents", "CommonPrefixes"):
                if k in page:
                    out.setdefault(k, []).extend(page[k])
        return out

    def search(self, expression):
        """The common jmespath forms only: "Contents", "Contents[]",
        "Contents[].Key" (any top-level list and field)."""
        expr = expression.strip()
        top, _, field = expr.partition("[].")
        top = top[:-2] if top.endswith("[]") else top
        if not top.isidentifier() or (field and not field.isidentifier()):
            raise unsupported(f"paginator search expression {expression!r}",
                              " (supported: 'List', 'List[]', 'List[].Field')")
        for page in self:
            for item in page.get(top, []) or []:
                yield item.get(field) if field else item
