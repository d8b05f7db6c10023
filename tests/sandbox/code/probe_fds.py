# Which fds does the sandboxed process have, and are 3/4/5 the channel?
import os, sys
fds = sorted(int(f) for f in os.listdir('/proc/self/fd'))
# listdir itself held one more fd while listing; it is closed again now.
fds = [f for f in fds if os.path.exists('/proc/self/fd/%d' % f)]
print('fds', ' '.join(map(str, fds)))
for f in (3, 4, 5):
    print('fd%d' % f, os.readlink('/proc/self/fd/%d' % f))
print('env', os.environ.get('NEXUS_REGION_FD'), os.environ.get('NEXUS_KICK_HOST_FD'),
      os.environ.get('NEXUS_KICK_GUEST_FD'), os.environ.get('NEXUS_MODE'))
# The region is mappable and shared with the host: read the marker the test wrote.
import mmap
m = mmap.mmap(3, 4096)
print('region', bytes(m[:16]).rstrip(b'\0').decode())
m[16:32] = b'written-by-guest'
# The guest kick is an eventfd we can write.
os.write(4, (1).to_bytes(8, 'little'))
print('stdin', repr(sys.stdin.read()))
