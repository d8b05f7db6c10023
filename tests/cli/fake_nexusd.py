#!/usr/bin/python3
"""A stand-in for nexusd that speaks just enough of its HTTP API (the contract in
the spine: Lambda REST API + /nexus/v1 + /health) for the CLI's own tests:
lifecycle (`nexus up/down`), argument handling, deploy/invoke/logs plumbing and
the `status --json` shape.  It runs no functions: an invocation returns
{"echo": EVENT, "function": NAME}, or a Lambda-style handler error when the event
has "fail": true; "sleep": S delays the answer by S seconds.  It records every CreateFunction body in STATE/requests.jsonl so
tests can check what the CLI sent.  It is never used by `make demo`.

Command line: the same flags as nexusd (--listen HOST:PORT --state-dir DIR ...).
"""
import argparse
import base64
import io
import json
import os
import signal
import sys
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--listen", required=True)
ap.add_argument("--state-dir", required=True)
ap.add_argument("--runtime-dir")
ap.add_argument("--rootfs")
ap.add_argument("--s3-endpoint")
ap.add_argument("--s3-region")
ap.add_argument("--ignore-sigterm", action="store_true")
ap.add_argument("--fail-start", action="store_true")
args, _ = ap.parse_known_args()

if args.fail_start:
    print("fake-nexusd: failing on purpose (--fail-start)", file=sys.stderr)
    sys.exit(3)

functions = {}
logs = {}
PREFIX = "/2015-03-31/functions"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, body, headers=None, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def not_found(self, name):
        self.reply(404, {"Type": "User", "message": "Function not found: " + name},
                   {"x-amzn-ErrorType": "ResourceNotFoundException"})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n)

    def do_GET(self):
        p = self.path
        if p == "/health":
            return self.reply(200, b"ok", ctype="text/plain")
        if p == "/nexus/v1/status":
            return self.reply(200, {"ingress": "http://" + args.listen,
                                    "functions": [dict(v["config"]) for v in functions.values()],
                                    "instances": []})
        if p.startswith("/nexus/v1/functions/"):
            name = p.split("/")[4]
            if name not in functions:
                return self.not_found(name)
            lines = logs.get(name, [])
            if "?tail=" in p:
                lines = lines[-int(p.split("?tail=")[1]):]
            return self.reply(200, "".join(lines).encode(), ctype="text/plain")
        if p.rstrip("/") == PREFIX:
            return self.reply(200, {"Functions": [v["config"] for v in functions.values()]})
        if p.startswith(PREFIX + "/"):
            name = p[len(PREFIX) + 1:]
            if name not in functions:
                return self.not_found(name)
            return self.reply(200, {"Configuration": functions[name]["config"], "Tags": functions[name]["tags"]})
        self.reply(404, {"message": "no route"})

    def do_DELETE(self):
        name = self.path[len(PREFIX) + 1:]
        if name not in functions:
            return self.not_found(name)
        del functions[name]
        self.reply(204, b"")

    def do_POST(self):
        p = self.path
        raw = self.body()
        if p == PREFIX:
            req = json.loads(raw)
            with open(os.path.join(args.state_dir, "requests.jsonl"), "a") as f:
                f.write(json.dumps(req) + "\n")
            name = req["FunctionName"]
            if name in functions:
                return self.reply(409, {"Type": "User", "message": "Function already exist: " + name},
                                  {"x-amzn-ErrorType": "ResourceConflictException"})
            files = zipfile.ZipFile(io.BytesIO(base64.b64decode(req["Code"]["ZipFile"]))).namelist()
            cfg = {"FunctionName": name, "Handler": req["Handler"], "MemorySize": req.get("MemorySize", 128),
                   "Timeout": req.get("Timeout", 3), "Runtime": req.get("Runtime"), "CodeFiles": files}
            functions[name] = {"config": cfg, "tags": req.get("Tags", {})}
            return self.reply(201, cfg)
        if p.startswith(PREFIX + "/") and p.endswith("/invocations"):
            name = p[len(PREFIX) + 1:-len("/invocations")]
            if name not in functions:
                return self.not_found(name)
            event = json.loads(raw or b"{}")
            if isinstance(event, dict) and event.get("sleep"):
                import time
                time.sleep(float(event["sleep"]))
            rid = str(uuid.uuid4())
            logs.setdefault(name, []).extend([f"START RequestId: {rid}\n", f"event {json.dumps(event)}\n",
                                              f"END RequestId: {rid}\n"])
            if isinstance(event, dict) and event.get("fail"):
                return self.reply(200, {"errorMessage": "asked to fail", "errorType": "ValueError",
                                        "stackTrace": []}, {"X-Amz-Function-Error": "Unhandled"})
            return self.reply(200, {"echo": event, "function": name})
        self.reply(404, {"message": "no route"})


if args.ignore_sigterm:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
host, port = args.listen.rsplit(":", 1)
srv = ThreadingHTTPServer((host, int(port)), Handler)
print(f"nexusd: ready on http://{args.listen}", file=sys.stderr, flush=True)
srv.serve_forever()
