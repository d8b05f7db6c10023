"""ctypes binding of libnexus: the channel is implemented once, in C.

One Channel per process (get()), shared by the runtime loop and the boto3
shim, usable from any thread: every libnexus call releases the GIL and
libnexus is thread-safe.

Buffers the host hands over (GET bodies) are exposed as read-only
memoryviews over the shared region.  Each one is a slice of a ctypes array
placed at the buffer's address; a weakref.finalize on that array releases
the host buffer (NX_OP_RELEASE) once nothing references it any more, so a
memoryview handed to user code keeps the bytes valid for as long as it lives.

Snapshot restore (microVMs): libnexus re-attaches by itself when the region's
generation changes (guest/libnexus/guest.c).  The mapping stays where it was,
so base/size and every memoryview stay valid as memory, but buffers of the old
generation mean nothing to the new host: they are neither released nor freed
(release/free take the generation the buffer came from).
"""
import ctypes
import errno
import json
import os
import struct
import threading
import weakref

# Opcodes, statuses and TLV tags: include/nexus/channel.h.
OP_NOP, OP_READY, OP_INVOKE, OP_INVOKE_DONE, OP_RELEASE = 0, 1, 2, 3, 4
OP_S3_GET, OP_S3_PUT, OP_S3_HEAD, OP_S3_DELETE, OP_S3_LIST, OP_S3_COPY = 16, 17, 18, 19, 20, 21

S_OK, S_HANDLER_ERROR, S_STORAGE_ERROR, S_ACCESS_DENIED, S_INVALID = 0, 1, 2, 3, 4
S_NO_SPACE, S_UNSUPPORTED, S_IO_ERROR, S_TOO_LARGE = 5, 6, 7, 8
STATUS_NAMES = {0: "OK", 1: "HANDLER_ERROR", 2: "STORAGE_ERROR", 3: "ACCESS_DENIED", 4: "INVALID",
                5: "NO_SPACE", 6: "UNSUPPORTED", 7: "IO_ERROR", 8: "TOO_LARGE"}

ARG_BUCKET, ARG_KEY, ARG_RANGE, ARG_PREFIX, ARG_CONT_TOKEN, ARG_MAX_KEYS = 1, 2, 3, 4, 5, 6
ARG_DELIMITER, ARG_SRC_BUCKET, ARG_SRC_KEY, ARG_CONTENT_TYPE = 7, 8, 9, 10
ARG_START_AFTER, ARG_IF_MATCH, ARG_RUNTIME = 11, 12, 13
ARGS_MAX, FIELD_MAX = 8192, 4096


class ChannelError(OSError):
    """A local failure of the channel (not an answer from storage)."""


class _Reply(ctypes.Structure):
    _fields_ = [("status", ctypes.c_uint32), ("opcode", ctypes.c_uint32),
                ("meta", ctypes.c_void_p), ("meta_len", ctypes.c_uint64),
                ("body", ctypes.c_void_p), ("body_len", ctypes.c_uint64),
                ("meta_off", ctypes.c_uint64), ("body_off", ctypes.c_uint64)]


class _Invocation(ctypes.Structure):
    _fields_ = [("tag", ctypes.c_uint64),
                ("event", ctypes.c_void_p), ("event_len", ctypes.c_uint64),
                ("context", ctypes.c_void_p), ("context_len", ctypes.c_uint64),
                ("event_off", ctypes.c_uint64), ("context_off", ctypes.c_uint64)]


def default_lib_path():
    """libnexus.so of the runtime tree this file belongs to (/opt/nexus/lib)."""
    env = os.environ.get("NEXUS_LIBNEXUS")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "lib", "libnexus.so"))


def _load(path):
    lib = ctypes.CDLL(path, use_errno=False)
    P, U64, U32, U16, I, SZ = (ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_uint16,
                               ctypes.c_int, ctypes.c_size_t)
    sig = {
        "nx_attach_env": (I, [ctypes.POINTER(P)]),
        "nx_attach_fds": (I, [I, I, I, ctypes.POINTER(P)]),
        "nx_detach": (None, [P]),
        "nx_region_base": (P, [P]),
        "nx_region_size": (U64, [P]),
        "nx_generation": (U64, [P]),
        "nx_reattach_count": (U64, [P]),
        "nx_call": (I, [P, U16, ctypes.c_char_p, SZ, U64, U64, ctypes.POINTER(_Reply)]),
        "nx_nop": (I, [P]),
        "nx_ready": (I, [P, ctypes.c_char_p, ctypes.POINTER(_Reply)]),
        "nx_next_invocation": (I, [P, ctypes.POINTER(_Invocation), I]),
        "nx_invoke_done": (I, [P, U64, U32, ctypes.c_char_p, SZ]),
        "nx_release": (I, [P, U64]),
        "nx_alloc": (I, [P, U64, ctypes.POINTER(U64), ctypes.POINTER(P)]),
        "nx_free": (I, [P, U64]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def _check(r, what):
    if r < 0:
        e = -r
        raise ChannelError(e, f"nexus channel: {what} failed: {os.strerror(e)}")
    return r


def tlv(*fields):
    """Encode (tag, value) pairs as request arguments; None values are skipped."""
    out = []
    for tag, val in fields:
        if val is None:
            continue
        if isinstance(val, int):
            val = str(val)
        if isinstance(val, str):
            val = val.encode("utf-8")
        if len(val) > FIELD_MAX:
            raise ValueError(f"nexus channel: argument of {len(val)} bytes is over the {FIELD_MAX}-byte limit")
        if b"\0" in val:
            raise ValueError("nexus channel: argument contains a NUL byte")
        out.append(struct.pack("<HH", tag, len(val)))
        out.append(val)
    b = b"".join(out)
    if len(b) > ARGS_MAX:
        raise ValueError(f"nexus channel: arguments of {len(b)} bytes are over the {ARGS_MAX}-byte limit")
    return b


class Reply:
    """A completion: status, decoded metadata and (GET) the body as a
    read-only memoryview over the region (None when absent)."""
    __slots__ = ("status", "meta", "body")

    def __init__(self, status, meta, body):
        self.status, self.meta, self.body = status, meta, body


class Channel:
    def __init__(self, handle, lib):
        self._lib = lib
        self._g = handle
        self.base = lib.nx_region_base(handle)
        self.size = lib.nx_region_size(handle)
        # One array type spanning the region: an instance placed at a buffer's
        # address owns that buffer; only slices within the buffer are exposed.
        self._span = ctypes.c_ubyte * self.size
        self._region = memoryview(self._span.from_address(self.base)).cast("B")
        self._forked = False
        # A forked child shares the mapping but not the host's bookkeeping:
        # it must not post anything (nor release its parent's buffers).
        os.register_at_fork(after_in_child=self._mark_forked)

    def _mark_forked(self):
        self._forked = True

    @property
    def generation(self):
        """The region generation libnexus is attached to (changes on re-attach)."""
        return self._lib.nx_generation(self._g)

    @property
    def reattaches(self):
        return self._lib.nx_reattach_count(self._g)

    def _usable(self):
        if self._forked:
            raise ChannelError(errno.EPERM, "nexus channel: this process was forked from the runtime; only the "
                               "runtime process may use the channel (make S3 calls in the parent)")

    # ------------------------------------------------------------- basics
    def nop(self):
        self._usable()
        _check(self._lib.nx_nop(self._g), "nop")

    def release(self, off, gen=None):
        """Give a host buffer back; gen: the generation it came from (a buffer
        of a region that has since been replaced is not the new host's)."""
        if off and not self._forked and (gen is None or gen == self.generation):
            self._lib.nx_release(self._g, off)

    def _meta(self, rep):
        if not rep.meta_len:
            return {}
        try:
            return json.loads(bytes(self._region[rep.meta_off:rep.meta_off + rep.meta_len]))
        except ValueError:
            return {"Code": "InvalidMetadata", "Message": "nexus channel: the host sent metadata that is not JSON"}
        finally:
            self.release(rep.meta_off)

    def hold(self, off, length):
        """A read-only memoryview of a host buffer that releases it when the
        last reference to it (or to any slice of it) goes away."""
        owner = self._span.from_address(self.base + off)
        weakref.finalize(owner, self.release, off, self.generation)
        return memoryview(owner).cast("B")[:length].toreadonly()

    def ready(self, runtime="python3"):
        rep = _Reply()
        _check(self._lib.nx_ready(self._g, runtime.encode(), ctypes.byref(rep)), "READY")
        self.release(rep.body_off)
        meta = self._meta(rep)
        if rep.status != S_OK:
            raise ChannelError(errno.EPROTO, f"nexus channel: READY refused ({STATUS_NAMES.get(rep.status)})")
        return meta

    # --------------------------------------------------------- invocations
    def next_invocation(self, timeout_ms=-1):
        """Wait for an invocation; returns (tag, event bytes, context bytes)
        with both host buffers already released, or None on timeout."""
        inv = _Invocation()
        r = self._lib.nx_next_invocation(self._g, ctypes.byref(inv), timeout_ms)
        if r == -errno.ETIMEDOUT:
            return None
        _check(r, "waiting for an invocation")
        event = bytes(self._region[inv.event_off:inv.event_off + inv.event_len]) if inv.event_len else b""
        ctx = bytes(self._region[inv.context_off:inv.context_off + inv.context_len]) if inv.context_len else b""
        self.release(inv.event_off)
        self.release(inv.context_off)
        return inv.tag, event, ctx

    def invoke_done(self, tag, status, payload):
        _check(self._lib.nx_invoke_done(self._g, tag, status, payload, len(payload)), "INVOKE_DONE")

    # ---------------------------------------------------------- requests
    def alloc(self, length):
        """A guest-arena buffer: (offset, writable memoryview of length bytes)."""
        self._usable()
        off = ctypes.c_uint64()
        r = self._lib.nx_alloc(self._g, length, ctypes.byref(off), None)
        if r == -errno.ENOSPC:
            raise ChannelError(errno.ENOSPC, f"nexus channel: {length} bytes do not fit in the guest arena "
                               "(the function's region is too small for this object)")
        _check(r, "guest arena allocation")
        return off.value, self._region[off.value:off.value + length]

    def free(self, off, gen=None):
        if off and not self._forked and (gen is None or gen == self.generation):
            self._lib.nx_free(self._g, off)

    def call(self, opcode, args=b"", body_off=0, body_len=0):
        """One request; returns a Reply.  The body buffer (guest arena) stays
        the caller's."""
        self._usable()
        rep = _Reply()
        _check(self._lib.nx_call(self._g, opcode, args, len(args), body_off, body_len, ctypes.byref(rep)),
               "request")
        body = None
        if rep.body_len:
            body = self.hold(rep.body_off, rep.body_len)
        elif rep.body_off:
            self.release(rep.body_off)
        return Reply(rep.status, self._meta(rep), body)

    def call_with_body(self, opcode, args, data):
        """A request carrying data (bytes-like) in buf1: copied once into the guest arena."""
        mv = memoryview(data)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        n = mv.nbytes
        if n == 0:
            return self.call(opcode, args)
        gen = self.generation
        off, dst = self.alloc(n)
        try:
            dst[:] = mv
            return self.call(opcode, args, off, n)
        finally:
            self.free(off, gen)

    def call_with_reader(self, opcode, args, length, readinto):
        """A request whose data (length bytes) is read straight into the guest
        arena by readinto(memoryview) -> count: no intermediate copy."""
        if length == 0:
            return self.call(opcode, args)
        gen = self.generation
        off, dst = self.alloc(length)
        try:
            got = 0
            while got < length:
                n = readinto(dst[got:])
                if not n:
                    raise ValueError(f"nexus channel: the source ended after {got} of {length} bytes")
                got += n
            return self.call(opcode, args, off, length)
        finally:
            self.free(off, gen)


_lock = threading.Lock()
_channel = None


def open_channel(lib_path=None, fds=None):
    """Attach from the environment (or explicit fds, which are duplicated)."""
    lib = _load(lib_path or default_lib_path())
    h = ctypes.c_void_p()
    if fds is not None:
        r = lib.nx_attach_fds(fds[0], fds[1], fds[2], ctypes.byref(h))
    else:
        r = lib.nx_attach_env(ctypes.byref(h))
    if r == -errno.ENOENT:
        raise ChannelError(errno.ENOENT, "nexus channel: NEXUS_REGION_FD, NEXUS_KICK_HOST_FD and "
                           "NEXUS_KICK_GUEST_FD are not set: not running inside a Nexus sandbox")
    _check(r, "attach")
    return Channel(h, lib)


def attach(lib_path=None, fds=None):
    """open_channel, and make it the process's channel (what get() returns)."""
    global _channel
    ch = open_channel(lib_path, fds)
    with _lock:
        _channel = ch
    return ch


def get():
    """The process's channel, attached on first use."""
    with _lock:
        ch = _channel
    return ch if ch is not None else attach()
