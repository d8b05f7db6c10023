"""A delay line for benchmarks: a TCP proxy in front of the S3 server that makes it look remote
(every byte from S3 arrives later, optionally paced to a bandwidth).  Used by bench/writeback.py and
bench/prefetch.py (--s3-delay-ms, --s3-mbps)."""
import asyncio
import threading


def delay_line(target_port, delay_s, mbps=0):
    """A TCP proxy on a free port; bytes from the server reach the client delay_s later (pipelined),
    paced at mbps megabytes per second per connection when mbps > 0."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port = []

    async def pump(reader, writer, delay, rate=0):
        q = asyncio.Queue()

        async def out():
            free_at = 0.0
            while True:
                t, data = await q.get()
                if data is None:
                    break
                due = t + delay
                if rate:
                    free_at = max(free_at, due) + len(data) / rate
                    due = free_at
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            writer.close()
        task = loop.create_task(out())
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                q.put_nowait((loop.time(), data))
        finally:
            q.put_nowait((loop.time(), None))
            await task

    async def handle(cr, cw):
        sr, sw = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pump(cr, sw, 0), pump(sr, cw, delay_s, mbps * 1e6), return_exceptions=True)

    async def main():
        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        port.append(srv.sockets[0].getsockname()[1])
        ready.set()
        await srv.serve_forever()
    threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True).start()
    ready.wait()
    return port[0]
