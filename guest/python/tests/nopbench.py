"""The null round trip through the Python binding (ctypes -> libnexus), run
under guest-realhost: attach from the environment, READY, time N nops."""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(sys.argv[1], "python"))
from nexusrt import channel  # noqa: E402

n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
ch = channel.attach()
ch.ready("nopbench-python")
for _ in range(1000):
    ch.nop()
rounds = []
for _ in range(7):
    t = time.perf_counter()
    for _ in range(n):
        ch.nop()
    rounds.append((time.perf_counter() - t) / n * 1e6)
print(f"bench: Python (ctypes -> libnexus) null round trip against nexusd's chan.c: median "
      f"{statistics.median(rounds):.2f} us, min {min(rounds):.2f}, max {max(rounds):.2f} (7 rounds x {n})")
