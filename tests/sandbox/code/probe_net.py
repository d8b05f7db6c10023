# Network view of a nexus-mode sandbox: interfaces, and whether TCP gets out.
import socket, sys
with open('/proc/net/dev') as f:
    ifaces = [l.split(':')[0].strip() for l in f.readlines()[2:]]
print('ifaces', ' '.join(ifaces))
port = int(sys.argv[1])
for host in ('127.0.0.1', sys.argv[2]):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect((host, port))
        print('connect', host, 'OK')
    except OSError as e:
        print('connect', host, 'failed', type(e).__name__, e.errno)
try:
    socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    print('inet6 OK')
except OSError as e:
    print('inet6 failed', e.errno)
a, b = socket.socketpair()
a.send(b'x')
print('unix', b.recv(1).decode())
