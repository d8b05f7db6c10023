# Load what the real runtime loads at start, under the real filter: the shim
# first on sys.path (nexus mode), libnexus via ctypes, the runtime modules and
# the function's own module (from /var/task).  No channel traffic.
import sys
sys.path[:0] = ['/opt/nexus/python/shim', '/opt/nexus/python', '/var/task']
import ctypes
lib = ctypes.CDLL('/opt/nexus/lib/libnexus.so')
import nexusrt.runtime, nexusrt.channel
import boto3
assert '/opt/nexus/python/shim' in boto3.__file__, boto3.__file__
assert 'botocore.session' not in sys.modules, 'real botocore loaded in nexus mode'
import app
assert callable(app.handler)
print('runtime ok', boto3.__file__)
