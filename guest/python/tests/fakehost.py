"""A host-side test double for the guest runtime: creates a region (memfd) and
the two doorbell eventfds exactly as nexusd does (include/nexus/channel.h),
serves the guest's requests from an in-memory S3 and delivers invocations.

It speaks the ABI with mmap + struct, in a thread, and polls with a short
timeout (Python has no memory fences, so it never relies on the sleep flag
alone).  It checks the guest's side of the protocol: every RELEASE must name
a live host buffer, every guest buffer must lie in the guest arena.
"""
import datetime
import hashlib
import json
import mmap
import os
import select
import struct
import threading

MAGIC = 0x4752584E
HDR_SIZE = 4096
RING_ENTRIES = 256
RING_BYTES = 3 * 64 + 64 * RING_ENTRIES
TO_HOST = HDR_SIZE
TO_GUEST = TO_HOST + RING_BYTES
ARENAS = 40960
DESC = struct.Struct("<HHIQQQQQQQ")
F_COMPLETION = 1

OP_NOP, OP_READY, OP_INVOKE, OP_INVOKE_DONE, OP_RELEASE = 0, 1, 2, 3, 4
OP_GET, OP_PUT, OP_HEAD, OP_DELETE, OP_LIST, OP_COPY = 16, 17, 18, 19, 20, 21
S_OK, S_HANDLER_ERROR, S_STORAGE_ERROR, S_ACCESS_DENIED, S_INVALID, S_NO_SPACE, S_UNSUPPORTED = 0, 1, 2, 3, 4, 5, 6
TAGS = {1: "BUCKET", 2: "KEY", 3: "RANGE", 4: "PREFIX", 5: "CONT_TOKEN", 6: "MAX_KEYS", 7: "DELIMITER",
        8: "SRC_BUCKET", 9: "SRC_KEY", 10: "CONTENT_TYPE", 11: "START_AFTER", 12: "IF_MATCH", 13: "RUNTIME"}


def parse_tlv(b):
    out, pos = {}, 0
    while pos < len(b):
        if pos + 4 > len(b):
            raise ValueError("truncated TLV header")
        tag, n = struct.unpack_from("<HH", b, pos)
        pos += 4
        if tag not in TAGS or TAGS[tag] in out or pos + n > len(b):
            raise ValueError(f"bad TLV field {tag}")
        out[TAGS[tag]] = b[pos:pos + n].decode()
        pos += n
    return out


class Allocator:
    """First-fit over a sorted list of live allocations (64-byte aligned)."""

    def __init__(self, base, size):
        self.base, self.size, self.live = base, size, {}

    def alloc(self, n):
        n = max(64, (n + 63) & ~63)
        cur = self.base
        for off in sorted(self.live):
            if off - cur >= n:
                break
            cur = off + self.live[off]
        if cur + n > self.base + self.size:
            return None
        self.live[cur] = n
        return cur

    def release(self, off):
        return self.live.pop(off, None) is not None


class FakeS3:
    def __init__(self):
        self.buckets = {}

    def put(self, bucket, key, data, ctype="binary/octet-stream"):
        etag = '"%s"' % hashlib.md5(data).hexdigest()
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        self.buckets.setdefault(bucket, {})[key] = (bytes(data), ctype, etag, now)
        return etag


class FakeHost:
    def __init__(self, region_size=16 << 20, buckets=("test-bucket",), config=None):
        self.size = region_size
        self.region_fd = os.memfd_create("nexus-test-region", os.MFD_CLOEXEC)
        os.ftruncate(self.region_fd, region_size)
        self.kick_host = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.kick_guest = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.m = mmap.mmap(self.region_fd, region_size)
        self._u32 = memoryview(self.m).cast("I")
        half = ((region_size - ARENAS) // 2) & ~4095
        self.guest_arena = (ARENAS, half)
        self.host_arena = (ARENAS + half, region_size - ARENAS - half)
        hdr = struct.pack("<IHHQQIIQQQQQQ", MAGIC, 1, 0, region_size, 1, RING_ENTRIES, 0,
                          TO_HOST, TO_GUEST, self.guest_arena[0], self.guest_arena[1],
                          self.host_arena[0], self.host_arena[1])
        self.m[0:len(hdr)] = hdr
        self.alloc = Allocator(*self.host_arena)
        self.s3 = FakeS3()
        for b in buckets:
            self.s3.buckets.setdefault(b, {})
        self.allowed = set(buckets)
        self.config = config or {"function_name": "test-fn", "handler": "app.handler", "memory_mb": 128,
                                 "timeout_s": 3, "mode": "nexus", "version": "$LATEST"}
        self.violations = []
        self.requests = []          # (opcode, args) of every request, for assertions
        self.ready_runtime = None
        self.max_list = 1000
        self._lock = threading.Condition()
        self._mu = threading.RLock()    # to-guest ring producer + host allocator (two threads post)
        self._done = {}
        self._next_inv = 1000
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    # -------------------------------------------------------- plumbing
    @property
    def fds(self):
        return self.region_fd, self.kick_host, self.kick_guest

    def env(self):
        return {"NEXUS_REGION_FD": str(self.region_fd), "NEXUS_KICK_HOST_FD": str(self.kick_host),
                "NEXUS_KICK_GUEST_FD": str(self.kick_guest)}

    def close(self):
        self._stop = True
        os.eventfd_write(self.kick_host, 1)
        self._thread.join(5)
        for fd in self.fds:
            os.close(fd)

    # Ring indices go through a uint32 view of the region: one 4-byte load or store each,
    # as the C side's atomics expect.  Not struct.pack_into: it zeroes the target bytes
    # before it writes them, so the guest could read an index of 0 in between (a to-host
    # tail of 0 made libnexus see an impossible ring and mark the channel broken: the
    # test_concurrent_threads flake).
    def _r32(self, off):
        return self._u32[off >> 2]

    def _w32(self, off, v):
        self._u32[off >> 2] = v & 0xFFFFFFFF

    def _pop(self):
        head, tail = self._r32(TO_HOST), self._r32(TO_HOST + 64)
        if (head - tail) & 0xFFFFFFFF == 0:
            return None
        if (head - tail) & 0xFFFFFFFF > RING_ENTRIES:
            self.violations.append("impossible to-host head")
            return None
        slot = TO_HOST + 192 + 64 * (tail % RING_ENTRIES)
        d = DESC.unpack_from(self.m, slot)
        self._w32(TO_HOST + 64, tail + 1)
        return d

    def _push(self, opcode, flags, status, tag, bufs=()):
        with self._mu:
            self._push_locked(opcode, flags, status, tag, bufs)

    def _push_locked(self, opcode, flags, status, tag, bufs):
        b = list(bufs) + [(0, 0)] * (3 - len(bufs))
        while True:
            head, tail = self._r32(TO_GUEST), self._r32(TO_GUEST + 64)
            if (head - tail) & 0xFFFFFFFF < RING_ENTRIES:
                break
            select.select([], [], [], 0.001)
        DESC.pack_into(self.m, TO_GUEST + 192 + 64 * (head % RING_ENTRIES), opcode, flags, status, tag,
                       b[0][0], b[0][1], b[1][0], b[1][1], b[2][0], b[2][1])
        self._w32(TO_GUEST, head + 1)
        if self._r32(TO_GUEST + 128):
            self._w32(TO_GUEST + 128, 0)
        os.eventfd_write(self.kick_guest, 1)   # always: we cannot fence, so never risk a lost wake-up

    def _host_buf(self, data):
        with self._mu:
            off = self.alloc.alloc(len(data))
        if off is None:
            return None
        self.m[off:off + len(data)] = data
        return (off, len(data))

    def _guest_bytes(self, off, n):
        base, size = self.guest_arena
        if n == 0:
            return b""
        if off < base or off + n > base + size:
            self.violations.append(f"guest buffer {off}+{n} outside the guest arena")
            return None
        return bytes(self.m[off:off + n])

    def _serve(self):
        while not self._stop:
            d = self._pop()
            if d is None:
                self._w32(TO_HOST + 128, 1)
                if self._r32(TO_HOST) != self._r32(TO_HOST + 64):
                    continue
                if select.select([self.kick_host], [], [], 0.002)[0]:
                    try:
                        os.eventfd_read(self.kick_host)
                    except BlockingIOError:
                        pass
                continue
            try:
                self._handle(d)
            except Exception as e:  # a bug in the test double must be visible
                self.violations.append(f"fake host crashed on {d}: {e!r}")

    # -------------------------------------------------------- protocol
    def _complete(self, op, tag, status, meta=None, body=None):
        bufs = []
        for data in (meta, body):
            if data is None:
                bufs.append((0, 0))
                continue
            b = self._host_buf(data)
            if b is None:
                for off, n in bufs:
                    if n:
                        self.alloc.release(off)
                # as nexusd's chan.c reports it
                self._push(op, F_COMPLETION, S_NO_SPACE, tag,
                           [self._host_buf(b'{"Code":"NoSpace","Message":"","HTTPStatusCode":200}') or (0, 0)])
                return
            bufs.append(b)
        self._push(op, F_COMPLETION, status, tag, bufs)

    def _error(self, op, tag, status, code, msg, http):
        self._complete(op, tag, status, json.dumps({"Code": code, "Message": msg, "HTTPStatusCode": http}).encode())

    def _handle(self, d):
        op, flags, status, tag = d[0], d[1], d[2], d[3]
        bufs = [(d[4], d[5]), (d[6], d[7]), (d[8], d[9])]
        if op == OP_RELEASE:
            with self._mu:
                ok = self.alloc.release(bufs[0][0])
            if not ok:
                self.violations.append(f"release of {bufs[0][0]} which is not a live host buffer")
            return
        if op == OP_NOP:
            self._push(OP_NOP, F_COMPLETION, S_OK, tag)
            return
        raw = self._guest_bytes(*bufs[0])
        if raw is None:
            return self._error(op, tag, S_INVALID, "InvalidRequest", "bad args buffer", 400)
        try:
            args = parse_tlv(raw)
        except ValueError as e:
            self.violations.append(str(e))
            return self._error(op, tag, S_INVALID, "InvalidRequest", str(e), 400)
        self.requests.append((op, args))
        if op == OP_READY:
            self.ready_runtime = args.get("RUNTIME")
            return self._complete(op, tag, S_OK, json.dumps(self.config).encode())
        if op == OP_INVOKE_DONE:
            payload = self._guest_bytes(*bufs[1])
            self._push(op, F_COMPLETION, S_OK, tag)
            with self._lock:
                self._done[tag] = (status, payload)
                self._lock.notify_all()
            return
        if op in (OP_GET, OP_PUT, OP_HEAD, OP_DELETE, OP_LIST, OP_COPY):
            return self._s3(op, tag, args, bufs)
        self._error(op, tag, S_UNSUPPORTED, "NotImplemented", f"opcode {op}", 501)

    def _s3(self, op, tag, a, bufs):
        bucket = a.get("BUCKET")
        for b in (bucket, a.get("SRC_BUCKET")):
            if b is not None and b not in self.allowed:
                return self._error(op, tag, S_ACCESS_DENIED, "AccessDenied", "Access Denied", 403)
        if bucket not in self.s3.buckets:
            return self._error(op, tag, S_STORAGE_ERROR, "NoSuchBucket", "The specified bucket does not exist", 404)
        objs = self.s3.buckets[bucket]
        key = a.get("KEY")
        if op == OP_PUT:
            data = self._guest_bytes(*bufs[1])
            if data is None:
                return self._error(op, tag, S_INVALID, "InvalidRequest", "bad body buffer", 400)
            etag = self.s3.put(bucket, key, data, a.get("CONTENT_TYPE", "binary/octet-stream"))
            return self._complete(op, tag, S_OK, json.dumps({"ETag": etag}).encode())
        if op == OP_LIST:
            return self._list(op, tag, objs, a)
        if op == OP_COPY:
            src = self.s3.buckets.get(a["SRC_BUCKET"], {}).get(a["SRC_KEY"])
            if src is None:
                return self._error(op, tag, S_STORAGE_ERROR, "NoSuchKey", "The specified key does not exist.", 404)
            etag = self.s3.put(bucket, key, src[0], src[1])
            return self._complete(op, tag, S_OK, json.dumps({"ETag": etag, "LastModified": objs[key][3]}).encode())
        if op == OP_DELETE:
            objs.pop(key, None)
            return self._complete(op, tag, S_OK, b"{}")
        obj = objs.get(key)
        if obj is None:
            return self._error(op, tag, S_STORAGE_ERROR, "NoSuchKey", "The specified key does not exist.", 404)
        data, ctype, etag, lm = obj
        meta = {"ContentLength": len(data), "ETag": etag, "ContentType": ctype, "LastModified": lm}
        if op == OP_HEAD:
            return self._complete(op, tag, S_OK, json.dumps(meta).encode())
        if a.get("IF_MATCH") and a["IF_MATCH"] != etag:
            return self._error(op, tag, S_STORAGE_ERROR, "PreconditionFailed",
                               "At least one of the pre-conditions you specified did not hold", 412)
        if a.get("RANGE"):
            first, _, last = a["RANGE"].removeprefix("bytes=").partition("-")
            first = int(first)
            last = min(int(last) if last else len(data) - 1, len(data) - 1)
            meta["ContentRange"] = f"bytes {first}-{last}/{len(data)}"
            data = data[first:last + 1]
            meta["ContentLength"] = len(data)
        self._complete(op, tag, S_OK, json.dumps(meta).encode(), data if data else None)

    def _list(self, op, tag, objs, a):
        prefix, delim = a.get("PREFIX", ""), a.get("DELIMITER")
        start = a.get("CONT_TOKEN") or a.get("START_AFTER") or ""
        max_keys = min(int(a.get("MAX_KEYS", 1000)), self.max_list)
        contents, prefixes, last = [], [], None
        truncated = False
        for k in sorted(objs):
            if not k.startswith(prefix) or k <= start:
                continue
            if delim and delim in k[len(prefix):]:
                cp = prefix + k[len(prefix):].split(delim, 1)[0] + delim
                if cp in prefixes or cp <= start:
                    continue
                entry = ("p", cp)
            else:
                entry = ("k", k)
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            if entry[0] == "p":
                prefixes.append(entry[1])
                last = entry[1]
            else:
                d = objs[k]
                contents.append({"Key": k, "Size": len(d[0]), "ETag": d[2], "LastModified": d[3]})
                last = k
        meta = {"Contents": contents, "CommonPrefixes": [{"Prefix": p} for p in prefixes],
                "IsTruncated": truncated, "KeyCount": len(contents) + len(prefixes)}
        if truncated:
            # the last key or prefix returned: a prefix token skips everything under it
            meta["NextContinuationToken"] = last + "\uffff" if last in prefixes else last
        self._complete(op, tag, S_OK, json.dumps(meta).encode())

    # -------------------------------------------------------- invocations
    def invoke(self, event, context=None, timeout=10.0):
        """Deliver one invocation and wait for INVOKE_DONE: (status, payload bytes)."""
        ev = event if isinstance(event, bytes) else json.dumps(event).encode()
        ctx = {"aws_request_id": "req-%d" % self._next_inv, "deadline_ms": 0, "function_name": "test-fn",
               "memory_limit_in_mb": 128, "function_version": "$LATEST",
               "invoked_function_arn": "arn:aws:lambda:us-east-1:000000000000:function:test-fn",
               "log_group_name": "/aws/lambda/test-fn", "log_stream_name": "2026/01/01/[$LATEST]test"}
        import time
        ctx["deadline_ms"] = int(time.time() * 1000) + 3000
        ctx.update(context or {})
        with self._lock:
            tag = self._next_inv
            self._next_inv += 1
        e = self._host_buf(ev)
        c = self._host_buf(json.dumps(ctx).encode())
        self._push(OP_INVOKE, 0, 0, tag, [e or (0, 0), c])
        with self._lock:
            if not self._lock.wait_for(lambda: tag in self._done, timeout):
                raise TimeoutError(f"no INVOKE_DONE for invocation {tag} within {timeout}s")
            return self._done.pop(tag)
