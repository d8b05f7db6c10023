"""Deterministic inputs of a given size for the example functions (seeded):
PNG images for image-rotate (RGB noise, so PNG cannot compress it much and the
file size tracks the pixel count), English-like text for wordcount, random
bytes for pyaes."""
import io
import random

WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which "
         "but have an they you were her she there been one all we their has would when if so no will "
         "serverless function channel region memory instance sandbox storage object bucket latency").split()


def png(size, seed):
    from PIL import Image
    rnd = random.Random(seed)
    side = max(8, int((size / 3) ** 0.5))
    for _ in range(8):   # converge on the requested file size
        img = Image.frombytes("RGB", (side, side), rnd.randbytes(side * side * 3))
        out = io.BytesIO()
        img.save(out, format="PNG")
        got = out.tell()
        if abs(got - size) <= size * 0.05:
            break
        side = max(8, int(side * (size / got) ** 0.5))
    return out.getvalue()


def text(size, seed):
    rnd = random.Random(seed)
    # Zipf-like word frequencies, lines of ~12 words.
    weights = [1.0 / (i + 1) for i in range(len(WORDS))]
    out, n = [], 0
    while n < size:
        line = " ".join(rnd.choices(WORDS, weights, k=12)) + "\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def blob(size, seed):
    return random.Random(seed).randbytes(size)


MAKERS = {"image-rotate": png, "wordcount": text, "pyaes": blob}


def make(function, size, seed=1):
    return MAKERS[function](size, seed)
