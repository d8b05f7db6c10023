"""boto3.resource('s3') for nexus mode, on top of the shim's S3 client:
ServiceResource.Bucket/Object, Bucket.objects.all()/filter()/limit()/
page_size()/delete(), Bucket.put_object/upload_file/download_file/
upload_fileobj/download_fileobj/copy/Object, Object.get/put/delete/load/
reload/copy_from/upload_file/download_file and the attributes
content_length, e_tag, content_type, last_modified, metadata."""
import types

from boto3._nexus_s3 import unsupported


def _meta(client, **extra):
    return types.SimpleNamespace(client=client, service_name="s3", data=None, **extra)


class _Unsupported:
    _kind = "s3 resource"

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise unsupported(f"{self._kind}.{name}")


class S3ServiceResource(_Unsupported):
    _kind = "s3.ServiceResource"

    def __init__(self, client):
        self.meta = _meta(client)

    def Bucket(self, name):
        return Bucket(self.meta.client, name)

    def Object(self, bucket_name, key):
        return Object(self.meta.client, bucket_name, key)

    def ObjectSummary(self, bucket_name, key):
        return ObjectSummary(self.meta.client, bucket_name, key)

    def __repr__(self):
        return "s3.ServiceResource()"


class Bucket(_Unsupported):
    _kind = "s3.Bucket"

    def __init__(self, client, name):
        self.name = name
        self.meta = _meta(client)
        self.objects = ObjectCollection(client, name)

    def __repr__(self):
        return f"s3.Bucket(name={self.name!r})"

    def __eq__(self, other):
        return isinstance(other, Bucket) and other.name == self.name

    def __hash__(self):
        return hash(("bucket", self.name))

    def Object(self, key):
        return Object(self.meta.client, self.name, key)

    def put_object(self, Key, **kwargs):
        self.meta.client.put_object(Bucket=self.name, Key=Key, **kwargs)
        return Object(self.meta.client, self.name, Key)

    def upload_file(self, Filename, Key, ExtraArgs=None, Callback=None, Config=None):
        return self.meta.client.upload_file(Filename, self.name, Key, ExtraArgs, Callback, Config)

    def download_file(self, Key, Filename, ExtraArgs=None, Callback=None, Config=None):
        return self.meta.client.download_file(self.name, Key, Filename, ExtraArgs, Callback, Config)

    def upload_fileobj(self, Fileobj, Key, ExtraArgs=None, Callback=None, Config=None):
        return self.meta.client.upload_fileobj(Fileobj, self.name, Key, ExtraArgs, Callback, Config)

    def download_fileobj(self, Key, Fileobj, ExtraArgs=None, Callback=None, Config=None):
        return self.meta.client.download_fileobj(self.name, Key, Fileobj, ExtraArgs, Callback, Config)

    def copy(self, CopySource, Key, ExtraArgs=None, Callback=None, SourceClient=None, Config=None):
        return self.meta.client.copy(CopySource, self.name, Key, ExtraArgs, Callback, SourceClient, Config)

    def delete_objects(self, **kwargs):
        return self.meta.client.delete_objects(Bucket=self.name, **kwargs)


class ObjectCollection:
    """Bucket.objects: lazily lists with list_objects_v2 pages."""

    def __init__(self, client, bucket, params=None, limit=None, page_size=None):
        self._client, self._bucket = client, bucket
        self._params = dict(params or {})
        self._limit, self._page_size = limit, page_size

    def _copy(self, **changes):
        d = dict(params=self._params, limit=self._limit, page_size=self._page_size)
        d.update(changes)
        return ObjectCollection(self._client, self._bucket, **d)

    def all(self):
        return self._copy()

    def filter(self, **kwargs):
        allowed = {"Prefix", "Delimiter", "StartAfter", "MaxKeys", "EncodingType"}
        bad = set(kwargs) - allowed
        if bad:
            raise unsupported(f"s3.Bucket.objects.filter parameter(s) {sorted(bad)}",
                              f" (supported: {sorted(allowed)})")
        params = dict(self._params)
        params.update(kwargs)
        return self._copy(params=params)

    def limit(self, count):
        return self._copy(limit=count)

    def page_size(self, count):
        return self._copy(page_size=count)

    def pages(self):
        params = {k: v for k, v in self._params.items() if k not in ("MaxKeys", "EncodingType")}
        cfg = {}
        if self._page_size or self._params.get("MaxKeys"):
            cfg["PageSize"] = self._page_size or self._params["MaxKeys"]
        if self._limit is not None:
            cfg["MaxItems"] = self._limit
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, PaginationConfig=cfg, **params):
            yield [ObjectSummary(self._client, self._bucket, o["Key"], o) for o in page.get("Contents", [])]

    def __iter__(self):
        for page in self.pages():
            yield from page

    def delete(self, **kwargs):
        out = []
        for page in self.pages():
            if page:
                out.append(self._client.delete_objects(Bucket=self._bucket,
                                                       Delete={"Objects": [{"Key": o.key} for o in page]}))
        return out

    def __repr__(self):
        return f"s3.Bucket.objectsCollection(s3.Bucket(name={self._bucket!r}), s3.ObjectSummary)"


class ObjectSummary(_Unsupported):
    _kind = "s3.ObjectSummary"

    def __init__(self, client, bucket_name, key, data=None):
        self.bucket_name, self.key = bucket_name, key
        self.meta = _meta(client)
        data = data or {}
        self.meta.data = data
        self.size = data.get("Size")
        self.e_tag = data.get("ETag")
        self.last_modified = data.get("LastModified")
        self.storage_class = data.get("StorageClass", "STANDARD")
        self.owner = None

    def __repr__(self):
        return f"s3.ObjectSummary(bucket_name={self.bucket_name!r}, key={self.key!r})"

    def __eq__(self, other):
        return isinstance(other, (ObjectSummary, Object)) and (other.bucket_name, other.key) == (self.bucket_name, self.key)

    def __hash__(self):
        return hash((self.bucket_name, self.key))

    def Object(self):
        return Object(self.meta.client, self.bucket_name, self.key)

    def get(self, **kwargs):
        return self.meta.client.get_object(Bucket=self.bucket_name, Key=self.key, **kwargs)

    def put(self, **kwargs):
        return self.meta.client.put_object(Bucket=self.bucket_name, Key=self.key, **kwargs)

    def delete(self, **kwargs):
        return self.meta.client.delete_object(Bucket=self.bucket_name, Key=self.key, **kwargs)

    def copy_from(self, **kwargs):
        return self.meta.client.copy_object(Bucket=self.bucket_name, Key=self.key, **kwargs)


class Object(ObjectSummary):
    _kind = "s3.Object"
    _LAZY = {"content_length": "ContentLength", "e_tag": "ETag", "content_type": "ContentType",
             "last_modified": "LastModified", "metadata": "Metadata", "accept_ranges": "AcceptRanges"}

    def __init__(self, client, bucket_name, key):
        self.bucket_name, self.key = bucket_name, key
        self.meta = _meta(client)
        self._head = None

    def __repr__(self):
        return f"s3.Object(bucket_name={self.bucket_name!r}, key={self.key!r})"

    def __getattr__(self, name):
        field = Object._LAZY.get(name)
        if field is None:
            return _Unsupported.__getattr__(self, name)
        if self._head is None:
            self.load()
        return self._head.get(field)

    def load(self):
        self._head = self.meta.client.head_object(Bucket=self.bucket_name, Key=self.key)
        self.meta.data = self._head

    reload = load

    def Bucket(self):
        return Bucket(self.meta.client, self.bucket_name)

    def upload_file(self, Filename, ExtraArgs=None, Callback=None, Config=None):
        return self.meta.client.upload_file(Filename, self.bucket_name, self.key, ExtraArgs, Callback, Config)

    def download_file(self, Filename, ExtraArgs=None, Callback=None, Config=None):
        return self.meta.client.download_file(self.bucket_name, self.key, Filename, ExtraArgs, Callback, Config)

    def upload_fileobj(self, Fileobj, ExtraArgs=None, Callback=None, Config=None):
        return self.meta.client.upload_fileobj(Fileobj, self.bucket_name, self.key, ExtraArgs, Callback, Config)

    def download_fileobj(self, Fileobj, ExtraArgs=None, Callback=None, Config=None):
        return self.meta.client.download_fileobj(self.bucket_name, self.key, Fileobj, ExtraArgs, Callback, Config)

    def copy(self, CopySource, ExtraArgs=None, Callback=None, SourceClient=None, Config=None):
        return self.meta.client.copy(CopySource, self.bucket_name, self.key, ExtraArgs, Callback, SourceClient, Config)
