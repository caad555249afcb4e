"""A small HTTP/1.1 server on asyncio.Protocol: keep-alive, pipelining, limits, graceful drain.

``http.server`` spends a thread and a buffered file per connection; a hand-written parser on a
Protocol keeps the per-request cost to a few string splits, which is what lets the shim stay
close to a bare server in throughput.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Protocol

from .log import log

MAX_HEAD = 64 * 1024
# Longer than an ALB's 60 s idle timeout, so the balancer always closes first and never
# sends a request on a connection we are closing.
KEEPALIVE_TIMEOUT = 75.0
KEEPALIVE_HEADER = f"Keep-Alive: timeout={int(KEEPALIVE_TIMEOUT)}\r\n"
# While a request is being handled, buffer at most this much of the next before pausing.
READ_HIGH_WATER = 256 * 1024
# How long a refused request's body is read and dropped before the connection closes.
LINGER_S = 1.0

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    206: "Partial Content", 301: "Moved Permanently", 302: "Found", 303: "See Other",
    304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 410: "Gone",
    411: "Length Required", 413: "Payload Too Large", 415: "Unsupported Media Type",
    422: "Unprocessable Entity", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}  # fmt: skip


class Request:
    """One parsed request; header names keep the case the client sent."""

    __slots__ = (
        "body",
        "headers",
        "hmap",
        "method",
        "path",
        "query",
        "received",
        "remote",
        "version",
    )  # fmt: skip

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        version: str,
        headers: list[tuple[str, str]],
        body: bytes,
        remote: str,
        hmap: dict[str, str] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
        self.remote = remote
        # Lower-case name to last value, for the handful of lookups every request needs.
        self.hmap = hmap if hmap is not None else {n.lower(): v for n, v in headers}
        self.received = time.time()

    def header(self, lower_name: str) -> str | None:
        """The last value of a header, by its lower-case name, or None."""
        return self.hmap.get(lower_name)


class Response:
    """A complete response; Content-Length, Date and Connection are added when it is sent."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(
        self,
        status: int,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        reason: str | None = None,
    ) -> None:
        self.status = status
        self.headers = headers if headers is not None else []
        self.body = body
        self.reason = reason


Reply = Callable[[Response], None]


class App(Protocol):
    """What the server hands each request to; it must call ``reply`` exactly once."""

    def handle(self, request: Request, reply: Reply) -> None:
        """Answer ``request`` by calling ``reply``, now or later, on the loop thread."""


class HttpError(Exception):
    """The request cannot be parsed or is refused before it reaches the app."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_date_cache: tuple[int, bytes] = (0, b"")
# Idle times are stamped per request: the C clock, not loop.time(), which is a Python frame.
_clock = time.monotonic


def http_date() -> bytes:
    """The current ``Date`` header line, recomputed at most once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n")
    return _date_cache[1]


_SKIP_HEADERS = frozenset(("content-length", "transfer-encoding", "connection", "date"))
# Everything constant in a response head is formatted once, here, not per response.
_STATUS_LINES = {status: f"HTTP/1.1 {status} {reason}\r\n" for status, reason in REASONS.items()}
_KEEP_ALIVE_TAIL = KEEPALIVE_HEADER
_HTTP10_KEEP_ALIVE_TAIL = "Connection: keep-alive\r\n" + KEEPALIVE_HEADER
_CLOSE_TAIL = "Connection: close\r\n"


_heads: dict[tuple[object, ...], bytes] = {}


def serialize(response: Response, keep_alive: bool, head_only: bool, http10: bool) -> bytes:
    """The bytes of ``response`` on the wire."""
    status = response.status
    body = response.body
    # A handler mostly answers the same head again and again: format it once.
    key = (status, response.reason, *response.headers, len(body), keep_alive, http10)
    head = _heads.get(key)
    if head is None:
        head = _format_head(response, keep_alive, http10)
        if len(_heads) >= 512:
            _heads.clear()  # bound the memo against handlers that vary their headers
        _heads[key] = head
    date = _date_cache[1] if _date_cache[0] == int(time.time()) else http_date()
    if head_only or not body or status == 204 or status == 304:
        return head + date + b"\r\n"
    return b"".join((head, date, b"\r\n", body))


def _format_head(response: Response, keep_alive: bool, http10: bool) -> bytes:
    status = response.status
    reason = response.reason
    status_line = _STATUS_LINES.get(status) if reason is None else None
    if status_line is None:
        status_line = f"HTTP/1.1 {status} {reason or REASONS.get(status, 'Unknown')}\r\n"
    lines = [status_line]
    for name, value in response.headers:
        if name.lower() in _SKIP_HEADERS:
            continue
        if "\n" in value or "\r" in value:
            # Never let a handler's value split the response.
            value = value.replace("\r", " ").replace("\n", " ")
        lines.append(f"{name}: {value}\r\n")
    if status >= 200 and status != 204 and status != 304:
        lines.append(f"Content-Length: {len(response.body)}\r\n")
    if not keep_alive:
        lines.append(_CLOSE_TAIL)
    else:
        lines.append(_HTTP10_KEEP_ALIVE_TAIL if http10 else _KEEP_ALIVE_TAIL)
    return "".join(lines).encode("utf-8")


_new_request = object.__new__
_now = time.time

# RFC 9110 §5.6.2: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9112 §7.1: chunk-size is 1*HEXDIG (ASCII only: no sign, no "0x", no "_"); 16 digits
# already exceed any body we accept.
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
# Names already checked against _TOKEN: clients send the same few, so the check is a set
# lookup per header. Bounded against clients that invent names. The request parser keeps the
# lower-cased names apart: it checks those it already hashed for its header map.
_token_names: set[str] = set()
_lower_token_names: set[str] = set()


def is_token(name: str) -> bool:
    """True when ``name`` is an RFC 9110 token, as a field name must be."""
    if name in _token_names:
        return True
    if _TOKEN.fullmatch(name) is None:
        return False
    if len(_token_names) < 4096:
        _token_names.add(name)
    return True


def _check_names(headers: list[tuple[str, str]]) -> None:
    """Raise a 400 unless every header name is a token; remember the good ones."""
    for name, _ in headers:
        if not is_token(name):
            raise HttpError(400, "malformed header line")
        if name.isascii() and len(_lower_token_names) < 4096:
            _lower_token_names.add(name.lower())


def _framing(headers: list[tuple[str, str]], hmap: dict[str, str]) -> tuple[int, bool]:
    """The body's ``(Content-Length, chunked)``, refusing every ambiguous framing with a 400."""
    if len(hmap) != len(headers):
        # A repeated name (rare): a repeated Content-Length must agree, and repeated
        # Transfer-Encoding lines form one list of codings (RFC 9110 §5.3).
        lengths = {v for n, v in headers if n.lower() == "content-length"}
        if len(lengths) > 1:
            raise HttpError(400, "conflicting Content-Length headers")
        codings = [v for n, v in headers if n.lower() == "transfer-encoding"]
        if len(codings) > 1:
            hmap["transfer-encoding"] = ", ".join(codings)
    coding = hmap.get("transfer-encoding")
    if coding is not None:
        # RFC 9112 §6.1 and §6.3: with both, the message is ambiguous (request smuggling);
        # and a request body is only delimited when chunked is the final coding. The shim
        # decodes no other coding, so chunked must be the only one.
        if "content-length" in hmap:
            raise HttpError(400, "both Transfer-Encoding and Content-Length")
        if coding.strip().lower() != "chunked":
            raise HttpError(400, "unsupported Transfer-Encoding")
        return 0, True
    raw = hmap.get("content-length")
    return (0, False) if raw is None else _content_length(raw)


def _content_length(raw: str) -> tuple[int, bool]:
    """A Content-Length value as ``(length, False)``; 400 unless it is ASCII digits."""
    # RFC 9110 §8.6: 1*DIGIT, ASCII only; str.isdigit() alone also takes '²' and '٣'.
    if not (raw.isascii() and raw.isdigit()):
        raise HttpError(400, "malformed Content-Length")
    if len(raw) > 18:
        # Past any body limit, and int() refuses digit strings past 4300 characters.
        raise HttpError(413, "request body too large")
    return int(raw), False


def parse_head(head: bytes, remote: str) -> tuple[Request, int, bool]:
    """Parse a request head (without its blank line); returns it, its body length and chunking."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    # One split of the whole head: the request line, then one piece per header line.
    lines = text.split("\r\n")
    # RFC 9112 §2.2: a bare CR or LF, or a NUL anywhere in the head, is refused, not
    # guessed at: two parsers reading it differently is how requests are smuggled.
    breaks = len(lines) - 1
    if text.count("\n") != breaks or text.count("\r") != breaks or "\x00" in text:
        raise HttpError(400, "bare CR, LF or NUL in the request head")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if not target or not method:
        raise HttpError(400, "empty request target or method")
    if version != "HTTP/1.1" and version[:7] != "HTTP/1.":
        raise HttpError(505 if version.startswith("HTTP/") else 400, "unsupported version")
    headers: list[tuple[str, str]] = []
    hmap: dict[str, str] = {}
    append = headers.append
    del lines[0]
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpError(400, "malformed header line")
        value = value.strip(" \t")
        append((name, value))
        hmap[name.lower()] = value
    # Every name is a token (RFC 9110 §5.6.2); this also refuses whitespace before the colon
    # and obsolete line folding (RFC 9112 §5.1, §5.2). In an ASCII head, lower-casing keeps a
    # token a token and a non-token a non-token, so the map's keys, hashed already, are
    # checked in one C-level subset test; any other head has each name checked as sent.
    if not (text.isascii() and hmap.keys() <= _lower_token_names):
        _check_names(headers)
    if len(hmap) == len(headers) and "transfer-encoding" not in hmap:
        # The common request: no repeated name, no chunking; only the length to check.
        raw = hmap.get("content-length")
        length, chunked = (0, False) if raw is None else _content_length(raw)
    else:
        length, chunked = _framing(headers, hmap)
    if target[0] != "/":
        if target.startswith(("http://", "https://")):
            # absolute-form, as proxies send it: keep only the path and query.
            slash = target.find("/", target.find("//") + 2)
            target = target[slash:] if slash >= 0 else "/"
        elif target != "*":
            raise HttpError(400, "malformed request target")
    if "?" in target:
        path, _, query = target.partition("?")
        if "#" in query:
            query = query.partition("#")[0]
    else:
        path, query = target, ""
    # Filling the slots directly costs a fraction of a keyword-free __init__ call with eight
    # arguments, and parse_head runs once per request.
    request: Request = _new_request(Request)
    request.method = method
    request.path = path
    request.query = query
    request.version = version
    request.headers = headers
    request.body = b""
    request.remote = remote
    request.hmap = hmap
    request.received = _now()
    return request, length, chunked


class Connection(asyncio.Protocol):
    """One client connection: parses requests in order and answers them one at a time."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.app = server.app
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.busy = False
        self.closing = False
        self.paused = False
        self.remote = ""
        self.last_active = 0.0
        self.keep_alive = True
        self.head_only = False
        self.http10 = False
        self.pending: _PendingBody | None = None
        self.discarding = False
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if isinstance(peer, tuple) else "127.0.0.1"
        self.last_active = _clock()
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.transport = None
        self.server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        if self.discarding:
            return
        self.buf = self.buf + data if self.buf else data
        if not self.busy:
            self._process()
        elif len(self.buf) > READ_HIGH_WATER and not self.paused and self.transport:
            self.paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        self.eof = True
        if self.discarding or not self.busy:
            self.close()
        # Otherwise keep the transport open to send the answer to a request in flight.
        return True

    @property
    def idle(self) -> bool:
        """True between requests, with nothing of the next one received."""
        return not self.busy and not self.buf and self.pending is None

    def close(self) -> None:
        """Close the connection once what was written has been sent."""
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def _process(self) -> None:
        try:
            while not self.busy and not self.closing:
                request = self._next_request()
                if request is None:
                    self.last_active = _clock()
                    return
                self.busy = True
                self.app.handle(request, self._reply)
        except HttpError as exc:
            self._fail(exc.status, str(exc))

    def _next_request(self) -> Request | None:
        if self.pending is not None:
            body, self.buf = self.pending.feed(self.buf)
            if body is None:
                return None
            request = self.pending.request
            request.body = body
            self.pending = None
            return request
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD:
                raise HttpError(431, "request head too large")
            if buf.count(b"\n") != buf.count(b"\r\n"):
                # A head ended by bare LFs would never be complete: refuse it now, not
                # after the client has waited out its own timeout.
                raise HttpError(400, "bare LF in the request head")
            return None
        if end > MAX_HEAD:
            raise HttpError(431, "request head too large")
        head = buf[:end]
        self.buf = buf[end + 4 :]
        if head[:2] == b"\r\n":
            # Stray CRLFs between requests are allowed (RFC 9112 §2.2).
            head = head.lstrip(b"\r\n")
        request, length, chunked = parse_head(head, self.remote)
        hmap = request.hmap
        connection = hmap.get("connection")
        self.http10 = request.version == "HTTP/1.0"
        if self.http10:
            self.keep_alive = connection is not None and "keep-alive" in connection.lower()
        else:
            self.keep_alive = connection is None or "close" not in connection.lower()
        self.head_only = request.method == "HEAD"
        if not length and not chunked:
            return request
        limit = self.server.body_limit
        if length > limit:
            raise HttpError(413, "request body too large")
        expect = hmap.get("expect")
        if expect is not None and expect.lower() == "100-continue" and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.pending = _PendingBody(request, length, chunked, limit)
        return self._next_request()

    def _reply(self, response: Response) -> None:
        transport = self.transport
        if transport is None or not self.busy:
            return
        keep_alive = self.keep_alive and not self.server.draining and not self.eof
        transport.write(serialize(response, keep_alive, self.head_only, self.http10))
        self.busy = False
        if not keep_alive:
            self.close()
            return
        if self.paused:
            self.paused = False
            transport.resume_reading()
        if self.buf or self.pending is not None:
            self._process()
        else:
            self.last_active = _clock()

    def _fail(self, status: int, message: str) -> None:
        text = "Request Entity Too Large" if status == 413 else message
        body = json.dumps({"message": text}).encode()
        response = Response(status, [("Content-Type", "application/json")], body)
        self.busy = True  # nothing more is parsed on this connection
        self.buf = b""
        self.pending = None
        transport = self.transport
        if transport is None:
            return
        transport.write(serialize(response, False, False, False))
        if transport.can_write_eof():
            # Half-close and read on for a moment: closing with the client's body unread
            # would reset the connection and could destroy the response in flight.
            self.discarding = True
            transport.write_eof()
            self.loop.call_later(LINGER_S, self.close)
        else:
            self.close()


class _PendingBody:
    """The body of a request still arriving, by Content-Length or chunked coding."""

    __slots__ = ("chunked", "chunks", "length", "limit", "request", "size", "trailers")

    def __init__(self, request: Request, length: int, chunked: bool, limit: int) -> None:
        self.request = request
        self.length = length
        self.chunked = chunked
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.trailers = False

    def feed(self, buf: bytes) -> tuple[bytes | None, bytes]:
        """Consume what ``buf`` holds of the body: ``(body or None if incomplete, rest)``."""
        if not self.chunked:
            need = self.length - self.size
            self.chunks.append(buf[:need])
            self.size += min(need, len(buf))
            if self.size < self.length:
                return None, b""
            return b"".join(self.chunks), buf[need:]
        pos = 0
        while True:
            if self.trailers:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    return None, buf[pos:]
                line_empty = end == pos
                pos = end + 2
                if line_empty:
                    return b"".join(self.chunks), buf[pos:]
                continue
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                if len(buf) - pos > 1024:
                    raise HttpError(400, "malformed chunk size")
                return None, buf[pos:]
            size_text, ext, _ = buf[pos:line_end].partition(b";")
            if ext:
                size_text = size_text.rstrip(b" \t")  # BWS before a chunk extension
            if _CHUNK_SIZE.fullmatch(size_text) is None:
                raise HttpError(400, "malformed chunk size")
            size = int(size_text, 16)
            if size == 0:
                pos = line_end + 2
                self.trailers = True
                continue
            if self.size + size > self.limit:
                raise HttpError(413, "request body too large")
            start = line_end + 2
            if len(buf) < start + size + 2:
                return None, buf[pos:]
            if buf[start + size : start + size + 2] != b"\r\n":
                # Data longer than its size line says: refuse rather than resync on it.
                raise HttpError(400, "chunk data does not end where its size says")
            self.chunks.append(buf[start : start + size])
            self.size += size
            pos = start + size + 2


class HttpServer:
    """Serves an App on one port and drains gracefully on request."""

    def __init__(
        self,
        app: App,
        body_limit: int = 6291456,
        keepalive_timeout: float = KEEPALIVE_TIMEOUT,
    ) -> None:
        self.app = app
        self.body_limit = body_limit
        self.keepalive_timeout = keepalive_timeout
        self.connections: set[Connection] = set()
        self.draining = False
        self._server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the server runs on."""
        assert self._loop is not None
        return self._loop

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port``; returns once the socket is bound."""
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(
            lambda: Connection(self), host, port, reuse_address=True, backlog=1024
        )
        self._schedule_sweep()

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def _schedule_sweep(self) -> None:
        interval = min(5.0, max(0.05, self.keepalive_timeout / 4))
        self._sweeper = self.loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        # One timer for all connections: cheaper than re-arming a timer on every request.
        cutoff = _clock() - self.keepalive_timeout
        for conn in list(self.connections):
            if not conn.busy and conn.last_active < cutoff:
                conn.close()
        self._schedule_sweep()

    async def drain(self, grace: float) -> None:
        """Stop accepting, close idle connections, and wait up to ``grace`` s for the rest."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            if conn.idle:
                conn.close()
        end = self.loop.time() + grace
        while any(c.busy for c in self.connections) and self.loop.time() < end:
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            conn.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        # Give the transports one turn to flush and close.
        await asyncio.sleep(0)


async def serve_until_signal(server: HttpServer, port: int, banner: str, grace: float) -> None:
    """Serve on ``port`` until SIGTERM or SIGINT, then drain for up to ``grace`` seconds."""
    loop = asyncio.get_running_loop()
    await server.start("0.0.0.0", port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log(f"hybridless shim: {banner} on port {server.port}")
    await stop.wait()
    started = loop.time()
    busy = sum(1 for conn in server.connections if conn.busy)
    log(f"hybridless shim: stopping; draining {busy} in-flight request(s)")
    await server.drain(grace)
    log(f"hybridless shim: drained in {loop.time() - started:.2f}s")
