# Touch N MiB of memory (bytes * n writes every page).
import sys
n = int(sys.argv[1])
b = b'x' * (n << 20)
print('allocated', len(b) >> 20, 'MiB', flush=True)
