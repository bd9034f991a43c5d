"""An HTTP proxy that refuses WebSocket upgrades, as some corporate proxies do.

    python refusing_proxy.py LISTEN_PORT BACKEND_PORT

Plain requests (SSE streams and POSTs included) are passed to the backend on
127.0.0.1, one request per connection; an ``Upgrade: websocket`` request gets 403.
"""

import asyncio
import sys


async def pipe(reader, writer):
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer, backend_port):
    try:
        head = await client_reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        client_writer.close()
        return
    lines = head.decode("latin-1").split("\r\n")
    headers = [line for line in lines[1:] if line]
    if any(line.lower().startswith("upgrade:") and "websocket" in line.lower() for line in headers):
        client_writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await client_writer.drain()
        client_writer.close()
        return
    kept = [line for line in headers if not line.lower().startswith("connection:")]
    request = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
    backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", backend_port)
    backend_writer.write(request)
    await backend_writer.drain()
    await asyncio.gather(pipe(client_reader, backend_writer), pipe(backend_reader, client_writer))


async def main(listen_port, backend_port):
    server = await asyncio.start_server(lambda r, w: handle(r, w, backend_port), "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
