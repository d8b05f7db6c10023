"""The Lambda-style invocation loop (protocol: docs/channel.md, "Runtime protocol").

attach -> READY (get the function config) -> set up sys.path -> import the
handler -> loop { INVOKE -> handler(event, context) -> INVOKE_DONE }.
"""
import errno
import importlib
import importlib.machinery
import json
import os
import sys
import time

from . import channel

# logging and traceback are imported only when needed: they are a large part
# of the runtime's own start-up time, and a cold start pays for every import.

PAYLOAD_MAX = 6 * 1024 * 1024   # NX_PAYLOAD_MAX: the largest invocation result
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # /opt/nexus/python
SHIM_DIR = os.path.join(HERE, "shim")


class LambdaContext:
    """What handler(event, context) gets as context, shaped like AWS Lambda's."""

    def __init__(self, ctx, config):
        self.aws_request_id = ctx.get("aws_request_id", "")
        self.function_name = ctx.get("function_name", config.get("function_name", ""))
        self.function_version = ctx.get("function_version", config.get("version", "$LATEST"))
        self.invoked_function_arn = ctx.get("invoked_function_arn", "")
        self.memory_limit_in_mb = int(ctx.get("memory_limit_in_mb", config.get("memory_mb", 128)))
        self.log_group_name = ctx.get("log_group_name", f"/aws/lambda/{self.function_name}")
        self.log_stream_name = ctx.get("log_stream_name", "")
        self.identity = None
        self.client_context = None
        deadline = ctx.get("deadline_ms")
        if not isinstance(deadline, (int, float)):
            deadline = time.time() * 1000 + 1000 * float(config.get("timeout_s", 3))
        self._deadline_ms = deadline

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))

    def __repr__(self):
        return (f"LambdaContext(aws_request_id={self.aws_request_id!r}, function_name={self.function_name!r}, "
                f"memory_limit_in_mb={self.memory_limit_in_mb})")


class _RequestId:
    current = ""


def setup_logging(logging):
    """Like Lambda: a root handler printing [LEVEL] time request-id message,
    root level WARNING (so logging.info needs setLevel, as on Lambda)."""
    class RequestIdFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _RequestId.current
            return True

    h = logging.StreamHandler(sys.stdout)
    h.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
                                     "%Y-%m-%dT%H:%M:%S"))
    h.formatter.converter = time.gmtime
    h.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(h)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING").upper()
    root.setLevel(level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "WARNING")


class _SetUpLoggingOnImport:
    """A sys.meta_path finder that configures logging right after something
    imports it (and then removes itself), so functions that never log never
    pay for importing logging."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        inner = spec.loader

        class Loader:
            def create_module(self, spec):
                return inner.create_module(spec)

            def exec_module(self, module):
                inner.exec_module(module)
                setup_logging(module)

        spec.loader = Loader()
        return spec


def arrange_logging():
    if "logging" in sys.modules:
        setup_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, _SetUpLoggingOnImport())


def error_payload(etype, message, tb=None):
    import traceback
    trace = traceback.format_list(traceback.extract_tb(tb)) if tb is not None else []
    return {"errorMessage": message, "errorType": etype, "stackTrace": trace}


def log_error(err):
    lines = "".join(err["stackTrace"])
    print(f"[ERROR] {err['errorType']}: {err['errorMessage']}" + (f"\nTraceback (most recent call last):\n{lines}"
                                                                   if lines else ""),
          file=sys.stderr, flush=True)


def _user_frames(tb):
    """Skip the import machinery's frames at the top of a traceback."""
    while tb is not None and (tb.tb_frame.f_code.co_filename.startswith("<frozen")
                              or tb.tb_frame.f_code.co_filename in (importlib.__file__, __file__)):
        tb = tb.tb_next
    return tb


def load_handler(spec):
    """Import "module.function" (module may be dotted or a path "dir/mod").
    Returns (function, None) or (None, error payload)."""
    modname, _, fname = spec.rpartition(".")
    if not modname or not fname:
        return None, error_payload("Runtime.MalformedHandlerName",
                                   f"Bad handler '{spec}': not enough values to unpack (expected 2, got 1)")
    modname = modname.replace("/", ".")
    try:
        mod = importlib.import_module(modname)
    except SyntaxError as e:
        return None, error_payload("Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {e}")
    except ImportError as e:  # like Lambda: no trace through the import machinery
        return None, error_payload("Runtime.ImportModuleError", f"Unable to import module '{modname}': {e}")
    except Exception as e:  # raised by the module's top level: show where
        return None, error_payload("Runtime.ImportModuleError", f"Unable to import module '{modname}': {e}",
                                   _user_frames(e.__traceback__))
    fn = getattr(mod, fname, None)
    if fn is None or not callable(fn):
        return None, error_payload("Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'")
    return fn, None


def set_lambda_env(config):
    os.environ.setdefault("LAMBDA_TASK_ROOT", config.get("task_root", "/var/task"))
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", str(config.get("function_name", "")))
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_VERSION", str(config.get("version", "$LATEST")))
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", str(config.get("memory_mb", 128)))
    os.environ.setdefault("AWS_EXECUTION_ENV", "AWS_Lambda_python3_nexus")
    os.environ.setdefault("_HANDLER", str(config.get("handler", "")))


class _Clock:
    reattaches_seen = 0


def _set_realtime(ms):
    """clock_settime(CLOCK_REALTIME): the runtime is root inside its microVM."""
    import ctypes

    class Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]
    libc = ctypes.CDLL(None, use_errno=True)
    ts = Timespec(int(ms // 1000), int(ms % 1000) * 1000000)
    if libc.clock_settime(0, ctypes.byref(ts)) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def sync_clock_after_restore(ch, ctx_json, config, set_realtime=_set_realtime):
    """A microVM restored from a snapshot comes back with the wall clock of the
    moment the snapshot was taken (docs/vmm.md, "Clock": monotonic, never
    jumping, but lagging by the snapshot's age).  After libnexus re-attached,
    the first invocation carries the host's time (its deadline minus the
    function's timeout, as nexusd computes the deadline): set the clock from
    it when they differ by more than a second.  Returns True when it was set."""
    n = getattr(ch, "reattaches", 0)
    if n == _Clock.reattaches_seen:
        return False
    _Clock.reattaches_seen = n
    deadline, timeout_s = ctx_json.get("deadline_ms"), config.get("timeout_s")
    if not isinstance(deadline, (int, float)) or not isinstance(timeout_s, (int, float)):
        return False
    host_ms = deadline - 1000 * timeout_s
    if abs(host_ms - time.time() * 1000) < 1000:
        return False
    try:
        set_realtime(host_ms)
    except OSError as e:
        print(f"[WARN] nexus runtime: cannot set the clock after a snapshot restore: {e}", file=sys.stderr,
              flush=True)
        return False
    return True


def invoke_one(ch, config, handler, init_error, tag, event_bytes, ctx_bytes):
    try:
        ctx_json = json.loads(ctx_bytes) if ctx_bytes else {}
    except ValueError:
        ctx_json = {}
    sync_clock_after_restore(ch, ctx_json, config)
    ctx = LambdaContext(ctx_json, config)
    _RequestId.current = ctx.aws_request_id
    if init_error is not None:
        err = init_error
    else:
        try:
            event = json.loads(event_bytes) if event_bytes.strip() else {}
        except ValueError as e:
            err = error_payload("Runtime.UnmarshalError", f"Unable to unmarshal input: {e}")
        else:
            try:
                result = handler(event, ctx)
            except Exception as e:
                # Skip this frame: the trace starts in user code, like Lambda's.
                err = error_payload(type(e).__name__, str(e), e.__traceback__.tb_next)
            else:
                try:
                    payload = json.dumps(result).encode()
                except (TypeError, ValueError) as e:
                    err = error_payload("Runtime.MarshalError", f"Unable to marshal response: {e}")
                else:
                    if len(payload) <= PAYLOAD_MAX:
                        ch.invoke_done(tag, channel.S_OK, payload)
                        return
                    err = error_payload("Function.ResponseSizeTooLarge",
                                        f"Response payload size ({len(payload)} bytes) exceeded maximum allowed "
                                        f"payload size ({PAYLOAD_MAX} bytes).")
    log_error(err)
    ch.invoke_done(tag, channel.S_HANDLER_ERROR, json.dumps(err).encode())


def prepare(config):
    """Everything between READY and the first invocation: sys.path (shim
    first in nexus mode), the Lambda environment, the working directory,
    logging, the handler import.  Returns (config, handler, init_error).
    Also what a zygote (zygote.py) runs before it forks instances."""
    mode = config.get("mode") or os.environ.get("NEXUS_MODE", "nexus")
    config["mode"] = mode
    task_root = os.path.abspath(os.environ.get("NEXUS_TASK_ROOT", "/var/task"))
    config["task_root"] = task_root
    # Order matters: the shim must shadow any installed boto3/botocore.
    sys.path.insert(0, task_root)
    if mode == "nexus":
        sys.path.insert(0, SHIM_DIR)
    set_lambda_env(config)
    try:
        os.chdir(task_root)   # as on Lambda: relative paths in user code resolve in the code directory
    except OSError:
        pass
    arrange_logging()
    handler, init_error = load_handler(str(config.get("handler", "app.handler")))
    if init_error is not None:
        log_error(init_error)
    return config, handler, init_error


def serve(ch, config, handler, init_error):
    """The nexus-mode invocation loop; never returns."""
    while True:
        tag, event, ctx = ch.next_invocation()
        try:
            invoke_one(ch, config, handler, init_error, tag, event, ctx)
        except channel.ChannelError as e:
            # The channel is unusable: exit so nexusd fails the invocation
            # (Runtime.ExitError) and replaces this instance.
            print(f"[ERROR] Runtime.ChannelError: {e}", file=sys.stderr, flush=True)
            sys.exit(70)


def arena_cache_budget_mb(env=os.environ):
    """The arena cache's budget: NX_PY_ARENA_CACHE_MB when the function sets
    it (0 = off), else 1/16 of the function's memory (32 MiB at 512 MB, 8 MiB
    at 128 MB; at least 4).  Idle instances hold only what they once used."""
    v = env.get("NX_PY_ARENA_CACHE_MB")
    if v is not None:
        try:
            return int(v)
        except ValueError:
            print(f"[WARN] NX_PY_ARENA_CACHE_MB={v!r} is not an integer: arena cache off",
                  file=sys.stderr, flush=True)
            return 0
    try:
        mem = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
    except ValueError:
        mem = 128
    return max(4, mem // 16)


def keep_arenas(lib_path=None):
    """Installs libnexus-pyarena.so (guest/python/arena_cache.c): freed pymalloc
    arenas stay mapped up to arena_cache_budget_mb(), so a handler that makes
    many small objects does not fault its arenas in again on every call.  Both
    modes get it (the A/B compares the fabric, not the allocator).  Returns the
    library handle, or None when off or unavailable (the runtime works without
    it, only slower)."""
    mb = arena_cache_budget_mb()
    if mb <= 0:
        return None
    import ctypes
    path = lib_path or os.path.join(os.path.dirname(channel.default_lib_path()), "libnexus-pyarena.so")
    try:
        lib = ctypes.PyDLL(path)   # PyDLL: called with the GIL held
    except OSError as e:
        print(f"[WARN] arena cache unavailable: {e}", file=sys.stderr, flush=True)
        return None
    lib.nx_pyarena_install.argtypes = [ctypes.c_size_t]
    lib.nx_pyarena_install.restype = ctypes.c_int
    rc = lib.nx_pyarena_install(mb << 20)
    if rc not in (0, -errno.EALREADY):   # a zygote's child inherits it
        print(f"[WARN] arena cache not installed: error {-rc}", file=sys.stderr, flush=True)
        return None
    return lib


def line_buffered_output():
    """One write per line on stdout and stderr.  The runtime runs under `python3 -u`, whose
    unbuffered text streams write each piece of a print() separately ("seen", " ", "{...}",
    "\\n"); the sandboxes of one function share its log file (O_APPEND, nexusd/funclog.h), so
    two instances printing at once interleaved mid-line.  A line is one O_APPEND write, and
    writes to a file do not interleave.  Still nothing waits in a buffer past its newline
    (what -u is there for), and print(..., flush=True) still flushes at once."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True, write_through=False)
        except (AttributeError, ValueError):   # replaced by something that is not a TextIOWrapper
            pass


def main():
    line_buffered_output()
    keep_arenas()
    if os.environ.get("NEXUS_ZYGOTE_FD"):   # started as a function's zygote (nexusd/sandbox_zygote.c)
        from . import zygote
        return zygote.main()
    ch = channel.attach()
    if os.environ.get("NEXUS_MODE") == "baseline":
        from . import baseline
        baseline.listen()   # before READY: the instance is ready when its HTTP server answers
    config, handler, init_error = prepare(ch.ready("python3"))
    if config.get("mode") == "baseline":   # the conventional stack: invocations over HTTP (docs/baseline.md)
        from . import baseline
        return baseline.serve(config, handler, init_error, invoke_one)
    serve(ch, config, handler, init_error)
