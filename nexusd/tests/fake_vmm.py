#!/usr/bin/python3
"""A stand-in for nexus-vmm in nexusd's host tests (there is no KVM here).

It speaks the monitor's side of the snapshot contract (docs/vmm.md): --help
names --control-fd, --nexus control and --restore; the region and the two
eventfds arrive as SCM_RIGHTS on {"cmd":"nexus-attach"}; pause, resume and
snapshot and ws-save answer like the monitor; --restore DIR checks DIR/vmstate and exits
72 with a one-line reason when it is corrupt; with NEXUS_VMM_VERIFY_MEMORY=1 (the
monitor's --verify-memory) it also checks DIR/memory against the sum in vmstate.  It plays the guest itself with
libnexus (nexusrt.channel): READY, then every invocation is answered with
{"restored": ..., "generation": ..., "event": ...}.  A restored "guest" only
says READY if the region's generation differs from the snapshot's, like the
real runtime that re-attaches on ESTALE; otherwise it hangs (nexusd must give
up on it).  FAKE_VMM_RUNTIME: the runtime dir (build/runtime).  FAKE_VMM_LOG: a file
to which every start appends one JSON line {"restore", "verify_memory", "ws"}, so the
tests can see what nexusd asked for.
"""
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time

USAGE = """usage: nexus-vmm --kernel PATH [--nexus R,H,G | --nexus control] [--control-fd N]
       nexus-vmm --restore DIR [--nexus ...] [--control-fd N]
(fake for nexusd's tests)
"""
state = {"paused": False, "restored": False, "generation": 0}


def refuse(why):
    print(f"nexus-vmm: snapshot refused: {why}", file=sys.stderr, flush=True)
    os._exit(72)


def read_line(sock, first_fds):
    buf = b""
    while not buf.endswith(b"\n"):
        if first_fds is not None and not buf:
            data, fds, _, _ = socket.recv_fds(sock, 1, 8)
            first_fds.extend(fds)
        else:
            data = sock.recv(1)
        if not data:
            os._exit(0)   # nexusd let go
        buf += data
    return json.loads(buf)


def control_loop(sock):
    while True:
        cmd = read_line(sock, None)
        c = cmd.get("cmd")
        if c == "pause":
            state["paused"] = True
            reply = {"ok": True, "state": "paused"}
        elif c == "resume":
            state["paused"] = False
            reply = {"ok": True, "state": "running"}
        elif c == "snapshot":
            if not state["paused"]:
                reply = {"ok": False, "error": "pause the VM first"}
            else:
                memory = b"fake guest memory " * 1000
                body = json.dumps({"generation": state["generation"],
                                   "memsum": hashlib.sha256(memory).hexdigest()}).encode()
                with open(os.path.join(cmd["dir"], "memory"), "wb") as f:
                    f.write(memory)
                with open(os.path.join(cmd["dir"], "vmstate"), "wb") as f:
                    f.write(b"FAKEVM1\n" + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
                reply = {"ok": True, "ms": 1, "memory_bytes": 4096}
        elif c == "ws-save":
            if not state["restored"]:
                reply = {"ok": False, "error": "ws-save works on a restored VM only"}
            else:
                fd = os.open(cmd["file"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.write(fd, b"0 1\n16 3\n")
                os.close(fd)
                reply = {"ok": True, "pages": 4}
        elif c == "status":
            reply = {"ok": True, "state": "paused" if state["paused"] else "running"}
        else:
            reply = {"ok": False, "error": f"unknown command {c}"}
        sock.sendall(json.dumps(reply).encode() + b"\n")


def main():
    args = sys.argv[1:]
    if "--help" in args:
        print(USAGE)
        return 0
    opt = {}
    i = 0
    while i < len(args):
        if args[i].startswith("--") and i + 1 < len(args):
            opt.setdefault(args[i], []).append(args[i + 1])
            i += 2
        else:
            i += 1
    if os.environ.get("FAKE_VMM_LOG"):
        with open(os.environ["FAKE_VMM_LOG"], "a") as f:
            f.write(json.dumps({"restore": opt.get("--restore", [None])[0],
                                "verify_memory": os.environ.get("NEXUS_VMM_VERIFY_MEMORY") == "1",
                                "ws": opt.get("--ws", [None])[0]}) + "\n")
    if opt.get("--nexus") != ["control"] or "--control-fd" not in opt:
        print("fake nexus-vmm: only --nexus control with --control-fd", file=sys.stderr)
        return 64
    snap_gen = None
    if "--restore" in opt:
        try:
            raw = open(os.path.join(opt["--restore"][0], "vmstate"), "rb").read()
            magic, digest, body = raw.split(b"\n", 2)
        except (OSError, ValueError):
            refuse("vmstate missing or truncated")
        if magic != b"FAKEVM1" or hashlib.sha256(body).hexdigest().encode() != digest:
            refuse("vmstate checksum mismatch")
        meta = json.loads(body)
        snap_gen = meta["generation"]
        if os.environ.get("NEXUS_VMM_VERIFY_MEMORY") == "1":
            mp = os.path.join(opt["--restore"][0], "memory")
            if hashlib.sha256(open(mp, "rb").read()).hexdigest() != meta.get("memsum"):
                refuse(f"{mp}: memory checksum mismatch (corrupt)")
        state["restored"] = True
        if "--ws" in opt:   # like ws_load: "start count" lines, else a setup error (65)
            try:
                words = open(opt["--ws"][0]).read().split()
                assert len(words) % 2 == 0 and all(int(w) >= 0 for w in words)
            except (OSError, ValueError, AssertionError):
                print(f"nexus-vmm: --ws {opt['--ws'][0]}: not a list of 'start_page count' lines",
                      file=sys.stderr, flush=True)
                return 65
    sock = socket.socket(fileno=int(opt["--control-fd"][0]))
    fds = []
    cmd = read_line(sock, fds)
    if cmd.get("cmd") != "nexus-attach" or len(fds) != 3:
        sock.sendall(b'{"ok":false,"error":"expected nexus-attach with 3 fds"}\n')
        return 65
    sock.sendall(b'{"ok":true}\n')
    threading.Thread(target=control_loop, args=(sock,), daemon=True).start()

    sys.path.insert(0, os.path.join(os.environ["FAKE_VMM_RUNTIME"], "python"))
    from nexusrt import channel
    ch = channel.open_channel(os.path.join(os.environ["FAKE_VMM_RUNTIME"], "lib", "libnexus.so"), fds)
    for f in fds:
        os.close(f)
    state["generation"] = ch.generation
    if snap_gen is not None and ch.generation == snap_gen:
        while True:   # the region did not change: a restored guest would not notice it
            time.sleep(1)
    if snap_gen is None:
        time.sleep(0.3)   # "boot"
    ch.ready("python3")
    while True:
        tag, event, _ = ch.next_invocation()
        ch.invoke_done(tag, channel.S_OK, json.dumps(
            {"restored": state["restored"], "generation": ch.generation, "pid": os.getpid(),
             "event": json.loads(event or b"{}")}).encode())


if __name__ == "__main__":
    sys.exit(main())
