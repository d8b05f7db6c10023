"""botocore.response.StreamingBody for nexus mode: a GET body that lives in
the shared region.

The body is a read-only memoryview over the host buffer that nexusd wrote the
object into.  read() copies (it returns bytes, as botocore's does); the
zero-copy accessor memoryview() does not.  The host buffer is released when
the body is closed or garbage-collected and no memoryview obtained from it is
alive any more (a memoryview keeps its bytes valid for as long as it lives).
"""
import io


class StreamingBody(io.IOBase):
    _DEFAULT_CHUNK_SIZE = 1024

    def __init__(self, view, content_length=None):
        self._view = view if view is not None else memoryview(b"")
        self._content_length = len(self._view) if content_length is None else content_length
        self._pos = 0

    # ---------------------------------------------------------- nexus
    def memoryview(self):
        """The whole body as a read-only memoryview over the shared region:
        no copy.  Valid for as long as the memoryview itself lives."""
        self._check()
        return self._view

    # ---------------------------------------------------------- botocore API
    def _check(self):
        if self._view is None:
            raise ValueError("I/O operation on closed file.")

    def readable(self):
        return True

    def seekable(self):
        return True

    def read(self, amt=None):
        self._check()
        end = len(self._view) if amt is None or amt < 0 else min(len(self._view), self._pos + amt)
        out = bytes(self._view[self._pos:end])
        self._pos = end
        return out

    def readinto(self, b):
        self._check()
        dst = memoryview(b).cast("B")
        n = min(len(dst), len(self._view) - self._pos)
        dst[:n] = self._view[self._pos:self._pos + n]
        self._pos += n
        return n

    def readlines(self):
        return list(self.iter_lines(keepends=True))

    def __iter__(self):
        return self.iter_chunks(self._DEFAULT_CHUNK_SIZE)

    def __next__(self):
        chunk = self.read(self._DEFAULT_CHUNK_SIZE)
        if chunk:
            return chunk
        raise StopIteration()

    next = __next__

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()

    def iter_chunks(self, chunk_size=_DEFAULT_CHUNK_SIZE):
        while True:
            chunk = self.read(chunk_size)
            if not chunk:
                return
            yield chunk

    def iter_lines(self, chunk_size=_DEFAULT_CHUNK_SIZE, keepends=False):
        pending = b""
        for chunk in self.iter_chunks(chunk_size):
            lines = (pending + chunk).splitlines(True)
            for line in lines[:-1]:
                yield line if keepends else line.splitlines()[0]
            pending = lines[-1]
        if pending:
            yield pending if keepends else pending.splitlines()[0]

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        self._check()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, min(len(self._view), base + offset))
        return self._pos

    def set_socket_timeout(self, timeout):
        """No socket in nexus mode."""

    def close(self):
        # Dropping our reference releases the host buffer unless the user
        # still holds a memoryview from memoryview().
        self._view = None
        super().close()

    def __repr__(self):
        state = "closed" if self._view is None else f"{self._pos}/{len(self._view)}"
        return f"<nexus StreamingBody {state}>"
