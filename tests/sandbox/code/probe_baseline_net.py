# Network view of a baseline-mode sandbox: its interfaces, host loopback
# (must be unreachable), and the S3 relay nexusd points AWS_ENDPOINT_URL_S3 at
# (a round trip through it to the test's listener on host loopback).
import os, socket, sys
with open('/proc/net/dev') as f:
    print('ifaces', ' '.join(sorted(l.split(':')[0].strip() for l in f.readlines()[2:])))
ep = os.environ.get('AWS_ENDPOINT_URL_S3', '')
print('endpoint', ep)
print('listen', os.environ.get('NEXUS_BASELINE_LISTEN', ''))
try:
    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2).close()
    print('host loopback reachable')
except OSError as e:
    print('host loopback', type(e).__name__)
host, port = ep.split('//', 1)[1].rsplit(':', 1)
s = socket.create_connection((host, int(port)), timeout=5)
s.sendall(b'ping\n')
print('relay says', s.recv(16).decode().strip())
