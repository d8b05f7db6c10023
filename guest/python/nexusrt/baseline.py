"""Baseline mode's ingress: the guest's own HTTP server (docs/baseline.md).

In baseline mode (the conventional stack we measure Nexus against) invocations
do not come through the channel: nexusd forwards each one over HTTP to this
server, which listens on the sandbox's veth address (NEXUS_BASELINE_LISTEN,
e.g. 169.254.1.1:8080).  The handler runs exactly as in nexus mode
(runtime.invoke_one: same context, same errors, same limits); only the
transport differs.  Storage goes through the real boto3 over TCP.

    POST /invoke   body = event JSON, header X-Nexus-Context = context JSON
    -> 200, X-Nexus-Status: ok (body = result JSON) | error (body = Lambda error JSON)
"""
import http.server
import os
import sys

from . import channel


class _Result:
    """Stands in for the channel in runtime.invoke_one: keeps what it posts."""

    def __init__(self):
        self.status = None
        self.payload = b""

    def invoke_done(self, tag, status, payload):
        self.status = status
        self.payload = bytes(payload)


_server = None


def _make_server(address, bind):
    class Server(http.server.HTTPServer):
        allow_reuse_address = True

        def server_bind(self):
            # HTTPServer's would resolve the address's name (getfqdn): a DNS
            # lookup with nowhere to go.  Nothing here needs the name.
            import socketserver
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = self.server_address[:2]

        def handle_error(self, request, client_address):
            # An exception outside the handler (runtime bug, broken socket):
            # log it and keep serving.
            import traceback
            print("[ERROR] Runtime.BaselineError: " + traceback.format_exc(), file=sys.stderr, flush=True)

    return Server(address, None, bind_and_activate=bind)


def adopt(fd):
    """A zygote's child (zygote.py): serve on the listening socket nexusd
    made in this instance's own network namespace (nexusd/sandbox_zygote.c)
    instead of binding NEXUS_BASELINE_LISTEN, which names the zygote's."""
    global _server
    import socket
    sock = socket.socket(fileno=fd)
    if sock.type != socket.SOCK_STREAM or sock.family != socket.AF_INET:
        sock.close()
        print("[ERROR] Runtime.BaselineError: the zygote's listening socket is not TCP/IPv4", file=sys.stderr,
              flush=True)
        sys.exit(71)
    host, port = sock.getsockname()[:2]
    srv = _make_server((host, port), False)
    srv.socket.close()      # the one TCPServer made unasked: never bound
    srv.socket = sock
    srv.server_address = (host, port)
    srv.server_name, srv.server_port = host, port
    os.environ["NEXUS_BASELINE_LISTEN"] = f"{host}:{port}"
    _server = srv


def listen():
    """Bind and listen on NEXUS_BASELINE_LISTEN before the runtime posts READY:
    from then on the server answers (connections queue until serve() runs,
    as invocations queue on the channel while the handler is imported)."""
    global _server
    listen_at = os.environ.get("NEXUS_BASELINE_LISTEN", "")
    host, _, port = listen_at.rpartition(":")
    if not host or not port.isdigit():
        print(f"[ERROR] Runtime.BaselineError: NEXUS_BASELINE_LISTEN is not host:port ({listen_at!r})",
              file=sys.stderr, flush=True)
        sys.exit(71)

    _server = _make_server((host, int(port)), True)


def serve(config, handler, init_error, invoke_one):
    """Serve invocations forever, each through runtime.invoke_one."""
    if _server is None:
        listen()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"       # keep-alive: one connection per instance
        disable_nagle_algorithm = True       # headers and body are two writes

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            event = self.rfile.read(n) if n else b""
            ctx = (self.headers.get("X-Nexus-Context") or "").encode()
            res = _Result()
            invoke_one(res, config, handler, init_error, 0, event, ctx)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(res.payload)))
            self.send_header("X-Nexus-Status", "ok" if res.status == channel.S_OK else "error")
            self.end_headers()
            self.wfile.write(res.payload)

        def log_message(self, fmt, *args):   # no access log in the function's log
            pass

    _server.RequestHandlerClass = Handler
    _server.serve_forever(poll_interval=3600)
