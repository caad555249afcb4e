"""A bare asyncio.Protocol HTTP/1.1 keep-alive server: the ceiling the Python shim is measured by.

It answers every request with one fixed response (the same bytes the shim sends for the
benchmark's trivial handler), so the difference between the two is the shim's own work:
event building, the handler call and the response mapping.

    python3 bench/peers/asyncio_http.py --port 8081 --body 'Hello, World!'
"""

from __future__ import annotations

import argparse
import asyncio
import time
from email.utils import formatdate


class _Dated:
    """The response bytes with a Date header refreshed once a second, as the shim does."""

    def __init__(self, content_type: str, body: bytes) -> None:
        self.head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nKeep-Alive: timeout=75\r\n"
        ).encode()
        self.body = body
        self.second = 0
        self.cached = b""

    def bytes(self) -> bytes:
        """The full response for the current second."""
        now = int(time.time())
        if now != self.second:
            self.second = now
            date = formatdate(now, usegmt=True).encode()
            self.cached = self.head + b"Date: " + date + b"\r\n\r\n" + self.body
        return self.cached


class BareHttp(asyncio.Protocol):
    """Splits requests on the blank line (skipping any Content-Length body) and replies."""

    def __init__(self, response: _Dated) -> None:
        self.response = response
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        out = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].lower()
            start = end + 4
            marker = head.find(b"content-length:")
            length = 0
            if marker >= 0:
                line_end = head.find(b"\r\n", marker)
                length = int(head[marker + 15 : line_end if line_end >= 0 else None])
            if len(buf) < start + length:
                break
            buf = buf[start + length :]
            out.append(self.response.bytes())
        self.buf = buf
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


async def _serve(port: int, response: _Dated) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: BareHttp(response), "0.0.0.0", port, reuse_address=True, backlog=1024
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--body", default="Hello, World!")
    parser.add_argument("--content-type", default="text/plain")
    args = parser.parse_args()
    response = _Dated(args.content_type, args.body.encode())
    try:
        asyncio.run(_serve(args.port, response))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
