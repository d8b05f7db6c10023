"""A private Nexus node for the benchmark: `nexus up` in its own NEXUS_HOME on
free ports (as tests/integration/conftest.py does), plus the few HTTP calls the
harness needs (Lambda REST API for deploy/delete, /nexus/v1/status, S3 via boto3)."""
import base64
import http.client
import io
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.parse
import zipfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD", "build")
BIN = os.path.join(ROOT, BUILD, "bin")
NEXUS = os.path.join(BIN, "nexus")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zip_dir(path, extra=None):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for base, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for f in files:
                if f.endswith((".png", ".txt", ".json")) and base == path and f != "requirements.txt":
                    continue   # sample inputs are not code
                full = os.path.join(base, f)
                z.write(full, os.path.relpath(full, path))
        for name, text in (extra or {}).items():
            z.writestr(name, text)
    return buf.getvalue()


PEER_KEY = "S3RVER"   # nexus-s3peer's default key pair: the same as the local s3rver's


def start_s3peer(log_path, threads=None):
    """nexus-s3peer (bench/s3peer) on a free loopback port: (Popen, endpoint URL)."""
    port_file = tempfile.mktemp(prefix="s3peer-port-")
    args = [os.path.join(BIN, "nexus-s3peer"), "--port", "0", "--port-file", port_file]
    if threads:
        args += ["--threads", str(threads)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log_path, "ab"))
    for _ in range(200):
        if os.path.exists(port_file) and open(port_file).read().strip():
            port = int(open(port_file).read())
            os.unlink(port_file)
            return proc, f"http://127.0.0.1:{port}"
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"nexus-s3peer did not start (see {log_path})")


class Node:
    """s3="s3rver": `nexus up` starts its local s3rver (signature-checking, ~1k req/s);
    s3="s3peer": the harness starts nexus-s3peer and the node uses it as an external
    endpoint (AWS_ENDPOINT_URL_S3), so the storage server does not limit the run."""

    def __init__(self, keep_alive=7200, s3="s3peer"):   # no instance may stop mid-run (see results-notes.md)
        self.home = tempfile.mkdtemp(prefix="nexus-bench-")
        self.env = dict(os.environ, NEXUS_HOME=self.home, NEXUS_PORT=str(free_port()),
                        NEXUS_S3_PORT=str(free_port()), NEXUS_KEEP_ALIVE=str(keep_alive))
        for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "NEXUS_URL",
                  "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION"):
            self.env.pop(k, None)
        self.s3kind = s3
        self.peer = None
        self.status = None
        self._conn = None

    def cli(self, *args, timeout=300):
        p = subprocess.run([NEXUS, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"nexus {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p.stdout

    def up(self):
        if self.s3kind == "s3peer":
            self.peer, endpoint = start_s3peer(os.path.join(self.home, "s3peer.log"))
            self.env.update(AWS_ENDPOINT_URL_S3=endpoint, AWS_ACCESS_KEY_ID=PEER_KEY,
                            AWS_SECRET_ACCESS_KEY=PEER_KEY, AWS_REGION="us-east-1")
        # --allow-unsandboxed: the floor runs the handler as a plain host process
        # (nexusd/sandbox_host.c); the node is private to this run and loopback-only.
        self.cli("up", "--", "--allow-unsandboxed")
        self.status = json.loads(self.cli("status", "--json"))
        u = urllib.parse.urlparse(self.ingress)
        self.host, self.port = u.hostname, u.port

    def down(self):
        try:
            self.cli("down", timeout=60)
        except Exception as e:   # noqa: BLE001 - best effort at exit
            print(f"bench: nexus down: {e}")
        if self.peer:
            self.peer.terminate()
            try:
                self.peer.wait(10)
            except subprocess.TimeoutExpired:
                self.peer.kill()
            self.peer = None

    @property
    def ingress(self):
        return self.status["ingress"].rstrip("/")

    def pids(self):
        """nexusd and s3 server pids (the CLI's pid files)."""
        out = {}
        for k in ("nexusd", "s3"):
            try:
                out[k] = int(open(os.path.join(self.home, f"{k}.pid")).read().split()[0])
            except (OSError, ValueError, IndexError):
                out[k] = None
        if self.peer:
            out["s3"] = self.peer.pid
        return out

    # ---- HTTP
    def request(self, method, path, body=None, timeout=300):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            hdr = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=hdr)
            r = conn.getresponse()
            data = r.read()
            return r.status, dict(r.getheaders()), data
        finally:
            conn.close()

    def nexus_status(self):
        st, _, data = self.request("GET", "/nexus/v1/status")
        assert st == 200, data
        return json.loads(data)

    def deploy(self, name, code_zip, mode, memory=256, timeout=120, buckets=(), max_instances=None, env=None,
               sandbox="process"):
        """sandbox="host": no sandbox at all (the floor; the node runs nexusd --allow-unsandboxed)."""
        tags = {"nexus:mode": mode, "nexus:sandbox": sandbox}
        if buckets:
            tags["nexus:buckets"] = ",".join(buckets)
        if max_instances:
            tags["nexus:max-instances"] = str(max_instances)
        body = {"FunctionName": name, "Runtime": "python3.11", "Role": "arn:aws:iam::000000000000:role/nexus",
                "Handler": "app.handler", "Code": {"ZipFile": base64.b64encode(code_zip).decode()},
                "MemorySize": memory, "Timeout": timeout, "Tags": tags}
        if env:
            body["Environment"] = {"Variables": dict(env)}
        st, _, data = self.request("POST", "/2015-03-31/functions", json.dumps(body))
        if st not in (200, 201):
            raise RuntimeError(f"CreateFunction {name}: HTTP {st}: {data[:500]!r}")

    def delete(self, name):
        self.request("DELETE", f"/2015-03-31/functions/{name}")

    def invoke(self, name, payload):
        """One invocation on a fresh connection; returns (seconds, status, body)."""
        t0 = time.perf_counter()
        st, hdr, data = self.request("POST", f"/2015-03-31/functions/{name}/invocations", json.dumps(payload))
        dt = time.perf_counter() - t0
        if st != 200 or any(k.lower() == "x-amz-function-error" for k in hdr):
            raise RuntimeError(f"invoke {name}: HTTP {st}: {data[:800]!r}")
        return dt, data

    def s3(self):
        import boto3
        from botocore.config import Config
        s = self.status["s3"]
        return boto3.session.Session(aws_access_key_id=s["access_key"],
                                     aws_secret_access_key=s.get("secret_key") or PEER_KEY,
                                     region_name=s["region"]).client(
            "s3", endpoint_url=s["endpoint"],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}, read_timeout=300))
