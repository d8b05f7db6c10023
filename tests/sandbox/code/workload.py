# What the example functions do, under the real filter: Pillow, pyaes, threads,
# a subprocess, json, /tmp.  Prints "workload ok" only if all of it worked.
import io, json, os, subprocess, threading, hashlib
from PIL import Image
img = Image.new('RGB', (64, 48), (10, 200, 30))
buf = io.BytesIO()
img.rotate(90, expand=True).save(buf, format='PNG')
out = Image.open(io.BytesIO(buf.getvalue()))
assert out.size == (48, 64), out.size
import pyaes
aes = pyaes.AESModeOfOperationCTR(b'k' * 32)
ct = aes.encrypt(b'hello nexus' * 100)
assert pyaes.AESModeOfOperationCTR(b'k' * 32).decrypt(ct) == b'hello nexus' * 100
res = []
ts = [threading.Thread(target=lambda i=i: res.append(hashlib.sha256(bytes([i]) * 100000).hexdigest())) for i in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
assert len(res) == 8
p = subprocess.run(['/bin/sh', '-c', 'echo sub $$'], capture_output=True, text=True)
assert p.returncode == 0 and p.stdout.startswith('sub'), p
with open('/tmp/x.json', 'w') as f:
    json.dump({'a': 1}, f)
with open('/tmp/x.json') as f:
    assert json.load(f) == {'a': 1}
import multiprocessing
with multiprocessing.Pool(2) as pool:
    assert pool.map(abs, [-1, -2]) == [1, 2]
print('workload ok')
