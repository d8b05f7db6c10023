"""A function's zygote: the runtime and the handler module imported once,
then forked into instances (nexusd/sandbox_zygote.c; why and what is shared:
nexusd/README-sandbox.md, "Zygote cold starts").

Started like an instance but with NEXUS_ZYGOTE_FD (a SOCK_SEQPACKET Unix
socket to nexusd) instead of a channel.  Protocol, one message each:
  zygote -> nexusd  b"R" + JSON {"pid", "threads", "init_error"}   after the import
  nexusd -> zygote  b"F" + SCM_RIGHTS [region, kick_host, kick_guest]   fork one instance
                    (baseline mode: + [listening socket], made in the instance's own
                    network namespace; the child serves HTTP on it, baseline.adopt)
  child  -> nexusd  b"C" + SCM_CREDENTIALS (the kernel gives nexusd the child's host pid)
EOF on the socket: the zygote stops forking and exits once its children are gone.
The child never returns into the zygote's loop: it serves invocations and
leaves with os._exit.
"""
import ctypes
import gc
import json
import os
import select
import socket
import struct
import sys
import threading

from . import channel, runtime

PR_SET_DUMPABLE = 4
_libc = ctypes.CDLL(None, use_errno=True)
IDLE_EXIT_S = 600          # no fork request and no children for this long: exit (nexusd starts a new one)


def config_from_env():
    """The READY meta, rebuilt from the environment nexusd gives every sandbox."""
    env = os.environ
    return {"function_name": env.get("AWS_LAMBDA_FUNCTION_NAME", ""), "handler": env.get("_HANDLER", "app.handler"),
            "memory_mb": int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
            "timeout_s": int(env.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3")),
            "mode": env.get("NEXUS_MODE", "nexus"), "version": "$LATEST"}


def reap():
    """Collect exited children; True while some still run.  Only on the idle
    tick: nexusd reads a child's exit status from /proc while it is a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def child(sock, fds, config, handler, init_error):
    """In the forked instance: own session, not ptrace-able/readable by its
    siblings, fresh random state, then attach the channel nexusd sent and serve
    (baseline mode: HTTP on the listening socket nexusd sent, fds[3])."""
    code = 70
    try:
        # First tell nexusd (it moves us into our own cgroup meanwhile).
        sock.sendmsg([b"C"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS,
                               struct.pack("iII", os.getpid(), os.getuid(), os.getgid()))])
        sock.close()
        os.setsid()     # its own session and process group, apart from the zygote's
        _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # siblings share the uid: no /proc/<pid>/mem, fd, environ
        if "random" in sys.modules:
            sys.modules["random"].seed()    # else every instance draws the zygote's sequence
        if len(fds) == 4:                  # baseline: listening before READY, as a fresh instance
            from . import baseline
            baseline.adopt(fds[3])         # owns the fd from now on
            fds = fds[:3]
        os.environ["NEXUS_REGION_FD"], os.environ["NEXUS_KICK_HOST_FD"], os.environ["NEXUS_KICK_GUEST_FD"] = \
            (str(f) for f in fds)
        ch = channel.attach(fds=fds)       # duplicates them
        for f in fds:
            os.close(f)
        got = ch.ready("python3")          # same protocol as a fresh instance; the host's config wins
        config.update({k: v for k, v in got.items() if k != "handler"})
        if config.get("mode") == "baseline":
            from . import baseline
            baseline.serve(config, handler, init_error, runtime.invoke_one)
        else:
            runtime.serve(ch, config, handler, init_error)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException as e:  # noqa: BLE001 - never fall back into the zygote's loop
        print(f"[ERROR] Runtime.ZygoteChild: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main():
    fd = int(os.environ.pop("NEXUS_ZYGOTE_FD"))
    # The channel variables point at the zygote socket: nothing may attach before a fork.
    for k in ("NEXUS_REGION_FD", "NEXUS_KICK_HOST_FD", "NEXUS_KICK_GUEST_FD"):
        v = os.environ.pop(k, None)
        if v and v.isdigit() and int(v) != fd:
            try:
                os.close(int(v))
            except OSError:
                pass
    sock = socket.socket(fileno=fd)
    config, handler, init_error = runtime.prepare(config_from_env())
    nfds = 3
    if config.get("mode") == "baseline":
        # What a fresh baseline instance imports before READY, in the snapshot too.
        from . import baseline  # noqa: F401 - http.server and socketserver with it
        nfds = 4
    channel._load(channel.default_lib_path())   # dlopen libnexus now, not in every instance
    # Everything imported so far goes to the collector's permanent generation:
    # a collection in a child then never walks (and so never copies) the
    # zygote's pages, which stay shared copy-on-write between its instances.
    gc.collect()
    gc.freeze()
    sock.send(b"R" + json.dumps({"pid": os.getpid(), "threads": threading.active_count(),
                                 "init_error": init_error}).encode())
    fdsize = struct.calcsize("4i")
    idle = 0.0
    while True:
        r, _, _ = select.select([sock], [], [], 5.0)
        if not r:
            idle = idle + 5.0 if not reap() else 0.0
            if idle >= IDLE_EXIT_S:
                return 0
            continue
        idle = 0.0
        try:
            msg, anc, _, _ = sock.recvmsg(16, socket.CMSG_SPACE(fdsize))
        except OSError:
            msg, anc = b"", []
        fds = []
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                n = len(data) // 4
                fds.extend(struct.unpack(f"{n}i", data[:4 * n]))
        if not msg:     # nexusd let go of this zygote: let the running instances finish
            for f in fds:
                os.close(f)
            while True:
                try:
                    os.wait()
                except ChildProcessError:
                    return 0
        if msg[:1] != b"F" or len(fds) != nfds:
            for f in fds:
                os.close(f)
            print(f"[ERROR] zygote: bad request {msg[:16]!r} with {len(fds)} fds", file=sys.stderr, flush=True)
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            child(sock, fds, config, handler, init_error)
        for f in fds:
            os.close(f)
