#!/usr/bin/python3
"""Writes the checked-in seed corpora (tests/fuzz/corpus/*).  Re-run after an
ABI change: /usr/bin/python3 tests/fuzz/make-seeds.py
Files named regress-* in the corpora are inputs that once found a bug: keep them."""
import os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
ARENAS = 40960                      # NX_ARENAS_OFF = guest arena start
OP = dict(NOP=0, READY=1, INVOKE=2, INVOKE_DONE=3, RELEASE=4, GET=16, PUT=17, HEAD=18, DELETE=19, LIST=20, COPY=21)
ARG = dict(BUCKET=1, KEY=2, RANGE=3, PREFIX=4, CONT_TOKEN=5, MAX_KEYS=6, DELIMITER=7,
           SRC_BUCKET=8, SRC_KEY=9, CONTENT_TYPE=10, START_AFTER=11, IF_MATCH=12, RUNTIME=13)

def tlv(*fields):
    out = b""
    for tag, val in fields:
        v = val.encode() if isinstance(val, str) else val
        out += struct.pack("<HH", ARG[tag], len(v)) + v
    return out

def desc(op, tag=0, bufs=(), status=0, flags=0):
    b = list(bufs) + [(0, 0)] * (3 - len(bufs))
    return struct.pack("<HHIQ", op, flags, status, tag) + b"".join(struct.pack("<QQ", o, l) for o, l in b)

def drain_input(descs, arena, head=None, tail=0, flags=0):
    head = tail + len(descs) if head is None else head
    return struct.pack("<IIBB", head & 0xffffffff, tail, len(descs), flags) + b"".join(descs) + arena

def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def main():
    a_get = tlv(("BUCKET", "allowed"), ("KEY", "k/1"))
    a_rng = tlv(("BUCKET", "allowed"), ("KEY", "k"), ("RANGE", "bytes=0-3"))
    a_list = tlv(("BUCKET", "allowed"), ("PREFIX", "p/"), ("MAX_KEYS", "5"), ("DELIMITER", "/"))
    a_copy = tlv(("SRC_BUCKET", "allowed"), ("SRC_KEY", "s"), ("BUCKET", "allowed"), ("KEY", "d"))
    a_deny = tlv(("BUCKET", "secret"), ("KEY", "k"))
    a_ready = tlv(("RUNTIME", "python3"))
    for name, a in [("get", a_get), ("range", a_rng), ("list", a_list), ("copy", a_copy), ("deny", a_deny),
                    ("ready", a_ready), ("ctype", tlv(("BUCKET", "b"), ("KEY", "k"), ("CONTENT_TYPE", "text/plain")))]:
        write("fuzz_tlv", name, a)
    write("fuzz_tlv", "empty", b"")
    write("fuzz_tlv", "dup", tlv(("KEY", "a"), ("KEY", "b")))

    # Guest arena: args at fixed 64-byte slots, then a body.
    slots = [a_get, a_rng, a_list, a_copy, a_deny, a_ready]
    arena = b""
    offs = []
    for s in slots:
        offs.append((ARENAS + len(arena), len(s)))
        arena += s + b"\0" * (-len(s) % 64)
    body_off = ARENAS + len(arena)
    body = b"payload " * 16
    arena += body
    G, R, L, C, D, Y = offs
    write("fuzz_drain", "nop", drain_input([desc(OP["NOP"], 1)], b""))
    write("fuzz_drain", "ready", drain_input([desc(OP["READY"], 1, [Y])], arena))
    write("fuzz_drain", "s3-all", drain_input([
        desc(OP["GET"], 1, [G]), desc(OP["GET"], 2, [R]), desc(OP["HEAD"], 3, [G]), desc(OP["DELETE"], 4, [G]),
        desc(OP["LIST"], 5, [L]), desc(OP["COPY"], 6, [C]), desc(OP["PUT"], 7, [G, (body_off, len(body))]),
        desc(OP["GET"], 8, [D])], arena))
    s3_all = [desc(OP["GET"], 1, [G]), desc(OP["GET"], 2, [R]), desc(OP["LIST"], 3, [L]),
              desc(OP["PUT"], 4, [G, (body_off, len(body))]), desc(OP["COPY"], 5, [C])]
    write("fuzz_drain", "s3-deferred", drain_input(s3_all, arena, flags=0x08))
    write("fuzz_drain", "s3-big-doorbell", drain_input(s3_all, arena, flags=0x04 | 0x40))
    write("fuzz_drain", "s3-to-guest-corrupt", drain_input(s3_all, arena, flags=0x10 | 0x08))
    write("fuzz_drain", "flood", drain_input([desc(99, 1), desc(OP["GET"], 2, [(0, 64)])], arena, head=256, flags=0x20))
    write("fuzz_drain", "s3-errors", drain_input([desc(OP["GET"], 1, [G]), desc(OP["LIST"], 2, [L])], arena, flags=1))
    write("fuzz_drain", "invoke-done", drain_input([desc(OP["INVOKE_DONE"], 1, [(0, 0), (body_off, len(body))])], arena))
    write("fuzz_drain", "releases", drain_input([desc(OP["RELEASE"], 0, [(ARENAS + 4 * 1024 * 1024 // 2, 0)]),
                                            desc(OP["RELEASE"], 0, [(2 ** 64 - 64, 0)])], arena))
    write("fuzz_drain", "hostile", drain_input([desc(99, 1), desc(OP["INVOKE"], 2), desc(OP["GET"], 3, [(0, 64)]),
                                           desc(OP["GET"], 4, [(ARENAS, 2 ** 64 - 1)]),
                                           desc(OP["NOP"], 5, flags=1)], arena))
    write("fuzz_drain", "bad-indices", drain_input([desc(OP["NOP"], 1)], b"", head=1000, tail=0))
    write("fuzz_drain", "wrap", drain_input([desc(OP["NOP"], i) for i in range(4)], b"", tail=0xfffffffe))

    ns = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    write("fuzz_s3_xml", "list", (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult{ns}><Name>b</Name>'
          '<Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter>'
          '<IsTruncated>true</IsTruncated><Contents><Key>p/a</Key><LastModified>2026-01-01T00:00:00.000Z'
          '</LastModified><ETag>&quot;e&quot;</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass>'
          '</Contents><CommonPrefixes><Prefix>p/sub/</Prefix></CommonPrefixes>'
          '<NextContinuationToken>tok==</NextContinuationToken></ListBucketResult>').encode())
    write("fuzz_s3_xml", "error", b'<?xml version="1.0"?><Error><Code>NoSuchKey</Code>'
          b'<Message>The specified key does not exist.</Message><Key>k</Key></Error>')
    write("fuzz_s3_xml", "copy", (f'<CopyObjectResult{ns}><LastModified>2026-01-01T00:00:00.000Z</LastModified>'
          '<ETag>"abc"</ETag></CopyObjectResult>').encode())

if __name__ == "__main__":
    main()
