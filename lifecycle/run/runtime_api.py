"""A Lambda Runtime API (2018-06-01) server for exactly one invocation (REFERENCE §3).

``invoke`` runs it on the host so that the image's own Runtime API client (``awslambdaric``,
``aws-lambda-ric`` or our shims) is exercised as Lambda exercises it: the client asks for the
next event, gets ours with every header Lambda sends, and posts a response or an error.

The server speaks a strict subset of HTTP/1.1 by hand rather than through ``http.server``:
request heads and bodies are bounded in size and in time (a client that trickles bytes is cut
off), ``Content-Length`` and ``chunked`` bodies are both accepted because both clients use
them, ``Expect: 100-continue`` is honoured (curl inside the clients sends it for large
bodies), and connections are capped so that idle sockets cannot pile up.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from lifecycle.errors import UsageError

API_PREFIX = "/2018-06-01"
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024  # Lambda's synchronous response limit

ResultKind = Literal["response", "error", "init-error"]


@dataclass(frozen=True)
class Limits:
    """Bounds on what one client may send; the defaults are Lambda's own where it has one."""

    max_body: int = LAMBDA_PAYLOAD_LIMIT
    max_head: int = 16 * 1024
    max_headers: int = 64
    head_seconds: float = 10.0  # from a request's first byte to the end of its head
    body_seconds: float = 60.0  # from the end of the head to the end of the body
    idle_seconds: float = 600.0  # a kept-alive connection with no request in flight
    max_connections: int = 16


@dataclass(frozen=True)
class Invocation:
    """The one event to hand out and the context headers that go with it."""

    event: bytes
    function_name: str = "function"
    region: str = "us-east-1"
    account: str = "000000000000"
    timeout_seconds: float = 300.0
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trace_id: str = field(default_factory=lambda: _new_trace_id())
    client_context: str = ""
    cognito_identity: str = ""

    def __post_init__(self) -> None:
        for name in (
            "function_name",
            "region",
            "account",
            "request_id",
            "trace_id",
            "client_context",
            "cognito_identity",
        ):
            value = getattr(self, name)
            if not value.isprintable() or not value.isascii():
                raise UsageError(
                    f"failed to prepare the invocation: {name} {value[:80]!r} is not plain ASCII"
                )
        if "/" in self.request_id or not self.request_id:
            raise UsageError(
                f"failed to prepare the invocation: bad request id {self.request_id!r}"
            )
        if not self.timeout_seconds > 0:
            raise UsageError("failed to prepare the invocation: the timeout must be positive")

    @property
    def function_arn(self) -> str:
        """The ARN Lambda reports as ``invokedFunctionArn``."""
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"


@dataclass(frozen=True)
class FunctionError:
    """The ``{errorMessage, errorType, stackTrace}`` document a client posts on failure."""

    error_message: str
    error_type: str
    stack_trace: tuple[str, ...] = ()

    def document(self) -> dict[str, object]:
        """The error as Lambda prints it."""
        return {
            "errorMessage": self.error_message,
            "errorType": self.error_type,
            "stackTrace": list(self.stack_trace),
        }


@dataclass(frozen=True)
class InvocationResult:
    """How the invocation ended: the handler's payload, or its error."""

    kind: ResultKind
    payload: bytes = b""  # the response body as posted (kind "response")
    error: FunctionError | None = None  # kinds "error" and "init-error"

    @property
    def ok(self) -> bool:
        """True when the handler returned."""
        return self.kind == "response"


class HttpError(Exception):
    """A request we refuse; the connection answers ``status`` and closes."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


@dataclass(frozen=True)
class Request:
    """One parsed request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class RuntimeApiServer:
    """Serves one invocation on ``host:port`` (port 0 picks a free one) until closed."""

    def __init__(
        self,
        invocation: Invocation,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.invocation = invocation
        self.limits = limits or Limits()
        self._clock = clock
        self._listener = socket.create_server((host, port), reuse_port=False)
        self._listener.settimeout(0.1)
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._closed = threading.Event()
        self._delivered = False
        self._result: InvocationResult | None = None
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._connections: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept_loop, name="runtime-api", daemon=True)

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._listener.getsockname()[1])

    def start(self) -> RuntimeApiServer:
        """Start accepting connections; return self."""
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> InvocationResult | None:
        """Block until the client posted a result, or ``timeout`` seconds pass (then ``None``)."""
        with self._done:
            self._done.wait_for(lambda: self._result is not None, timeout)
            return self._result

    @property
    def delivered(self) -> bool:
        """True once a client has received the event."""
        with self._lock:
            return self._delivered

    def close(self) -> None:
        """Stop accepting, release clients parked on ``next`` and close every connection."""
        self._closed.set()
        with self._done:
            self._done.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            _shutdown(conn)

    def __enter__(self) -> RuntimeApiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- connections -------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                _send(conn, 503, _error("TooManyConnections", "busy"), timeout=1.0)
                _shutdown(conn)
                continue
            with self._lock:
                self._connections.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = _Reader(conn, self.limits, self._closed)
        try:
            while not self._closed.is_set():
                try:
                    request = reader.request()
                except _PeerGone:
                    return
                except HttpError as exc:
                    _send(conn, exc.status, _error(exc.error_type, str(exc)), close=True)
                    return
                keep = self._handle(conn, request)
                if not keep or not request.keep_alive:
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.discard(conn)
            _shutdown(conn)
            self._slots.release()

    # --- the API -----------------------------------------------------------------------

    def _handle(self, conn: socket.socket, request: Request) -> bool:
        """Answer one request; return False when the connection must close."""
        path = request.path
        if not path.startswith(API_PREFIX + "/"):
            _send(conn, 404, _error("NotFound", f"no such path {path[:200]!r}"))
            return True
        route = path[len(API_PREFIX) :]
        if route == "/runtime/invocation/next":
            if request.method != "GET":
                return _method_not_allowed(conn, "GET")
            return self._next(conn)
        if route == "/runtime/init/error":
            if request.method != "POST":
                return _method_not_allowed(conn, "POST")
            return self._finish(conn, "init-error", request)
        parts = route.split("/")
        # ["", "runtime", "invocation", ID, "response"|"error"]
        if len(parts) == 5 and parts[:3] == ["", "runtime", "invocation"]:
            if parts[4] not in ("response", "error"):
                _send(conn, 404, _error("NotFound", f"no such path {path[:200]!r}"))
                return True
            if request.method != "POST":
                return _method_not_allowed(conn, "POST")
            if parts[3] != self.invocation.request_id:
                _send(
                    conn, 400, _error("InvalidRequestID", f"unknown request id {parts[3][:64]!r}")
                )
                return True
            kind: ResultKind = "response" if parts[4] == "response" else "error"
            return self._finish(conn, kind, request)
        _send(conn, 404, _error("NotFound", f"no such path {path[:200]!r}"))
        return True

    def _next(self, conn: socket.socket) -> bool:
        with self._lock:
            first = not self._delivered
            self._delivered = True
        if not first:
            # One invocation only: park the client as Lambda freezes a sandbox, until close.
            self._closed.wait()
            return False
        invocation = self.invocation
        deadline_ms = int((self._clock() + invocation.timeout_seconds) * 1000)
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
            "Lambda-Runtime-Trace-Id": invocation.trace_id,
            # Always sent, even empty: awslambdaric 4.x crashes without them (REFERENCE §3).
            "Lambda-Runtime-Client-Context": invocation.client_context,
            "Lambda-Runtime-Cognito-Identity": invocation.cognito_identity,
        }
        _send_raw(conn, 200, invocation.event, headers)
        return True

    def _finish(self, conn: socket.socket, kind: ResultKind, request: Request) -> bool:
        with self._lock:
            if kind != "init-error" and not self._delivered:
                state_error = "the event has not been delivered yet"
            elif self._result is not None:
                state_error = "this invocation already has a result"
            else:
                state_error = ""
                self._result = _result(kind, request)
                self._done.notify_all()
        if state_error:
            _send(conn, 400, _error("InvalidStateTransition", state_error))
            return True
        _send(conn, 202, {"status": "OK"})
        return True


# --- results ---------------------------------------------------------------------------


def _result(kind: ResultKind, request: Request) -> InvocationResult:
    if kind == "response":
        return InvocationResult(kind="response", payload=request.body)
    header_type = request.headers.get("lambda-runtime-function-error-type", "")
    return InvocationResult(kind=kind, error=parse_error(request.body, header_type))


def parse_error(body: bytes, header_type: str = "") -> FunctionError:
    """Read an error document leniently: clients differ, and a bad one is still an error."""
    fallback_type = header_type or "Runtime.Unknown"
    try:
        document = json.loads(body.decode("utf-8")) if body else {}
    except (UnicodeDecodeError, ValueError):
        return FunctionError(body.decode("utf-8", "replace")[:4096], fallback_type)
    if not isinstance(document, dict):
        return FunctionError(json.dumps(document)[:4096], fallback_type)
    message = document.get("errorMessage", "")
    error_type = document.get("errorType") or fallback_type
    # aws-lambda-ric (Node.js) posts its frames as "trace"; awslambdaric as "stackTrace".
    trace = document.get("stackTrace") or document.get("trace") or []
    if isinstance(trace, str):
        trace = trace.splitlines()
    return FunctionError(
        error_message=str(message),
        error_type=str(error_type),
        stack_trace=tuple(str(line) for line in trace) if isinstance(trace, list) else (),
    )


# --- HTTP ------------------------------------------------------------------------------


class _PeerGone(Exception):
    """The client closed the connection between requests, or the server is closing."""


class _Reader:
    """Reads bounded requests from one connection, keeping bytes read past a request."""

    def __init__(self, conn: socket.socket, limits: Limits, closed: threading.Event) -> None:
        self.conn = conn
        self.limits = limits
        self.closed = closed
        # A bytearray: appending is amortised O(1), so a 6 MB body is not copied per chunk.
        self.buffer = bytearray()
        self.served = 0  # requests read so far on this connection

    def request(self) -> Request:
        head = self._head()
        method, path, version, headers = _parse_head(head, self.limits)
        connection = headers.get("connection", "").lower()
        keep_alive = (
            "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        )
        body = b""
        if "transfer-encoding" in headers:
            if headers["transfer-encoding"].lower() != "chunked" or "content-length" in headers:
                raise HttpError(400, "BadRequest", "unsupported or ambiguous transfer encoding")
            self._continue(headers)
            body = self._chunked()
        elif "content-length" in headers:
            text = headers["content-length"]
            if not text.isdigit() or len(text) > 12:
                raise HttpError(400, "BadRequest", "malformed Content-Length")
            length = int(text)
            if length > self.limits.max_body:
                raise HttpError(
                    413,
                    "RequestEntityTooLarge",
                    f"body of {length} bytes exceeds the limit of {self.limits.max_body}",
                )
            self._continue(headers)
            body = self._exactly(length, time.monotonic() + self.limits.body_seconds)
        elif method == "POST":
            raise HttpError(411, "LengthRequired", "POST needs Content-Length or chunked encoding")
        return Request(method, path, headers, body, keep_alive)

    def _continue(self, headers: dict[str, str]) -> None:
        if headers.get("expect", "").lower() == "100-continue":
            self.conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _head(self) -> bytes:
        # Between requests on a kept-alive connection a client may idle for long; a new
        # connection must send its first request promptly, or it only holds a slot. Once a
        # request has started, its whole head must arrive within head_seconds.
        deadline: float | None = None
        idle = self.limits.idle_seconds if self.served else self.limits.head_seconds
        idle_until = time.monotonic() + idle
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buffer[:end])
                del self.buffer[: end + 4]
                self.served += 1
                return head
            if len(self.buffer) > self.limits.max_head:
                raise HttpError(431, "HeadersTooLarge", "request head too large")
            if deadline is None and self.buffer.strip(b"\r\n"):
                deadline = time.monotonic() + self.limits.head_seconds
            chunk = self._recv(
                deadline if deadline is not None else idle_until, idle=deadline is None
            )
            if not chunk:
                if self.buffer.strip():
                    raise HttpError(400, "BadRequest", "connection closed inside a request head")
                raise _PeerGone
            self.buffer += chunk

    def _recv(self, deadline: float, *, idle: bool = False) -> bytes:
        while True:
            if self.closed.is_set():
                raise _PeerGone
            left = deadline - time.monotonic()
            if left <= 0:
                if idle:
                    raise _PeerGone
                raise HttpError(408, "RequestTimeout", "request not received in time")
            self.conn.settimeout(min(left, 0.5))
            try:
                return self.conn.recv(65536)
            except TimeoutError:
                continue

    def _exactly(self, length: int, deadline: float) -> bytes:
        while len(self.buffer) < length:
            chunk = self._recv(deadline)
            if not chunk:
                raise HttpError(400, "BadRequest", "connection closed inside a body")
            self.buffer += chunk
        data = bytes(self.buffer[:length])
        del self.buffer[:length]
        return data

    def _line(self, deadline: float) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return line
            if len(self.buffer) > 4096:
                raise HttpError(400, "BadRequest", "chunk header too long")
            chunk = self._recv(deadline)
            if not chunk:
                raise HttpError(400, "BadRequest", "connection closed inside a chunked body")
            self.buffer += chunk

    def _chunked(self) -> bytes:
        deadline = time.monotonic() + self.limits.body_seconds
        parts: list[bytes] = []
        total = 0
        while True:
            size_text = self._line(deadline).split(b";", 1)[0].strip()
            if (
                not size_text
                or len(size_text) > 8
                or not all(c in b"0123456789abcdefABCDEF" for c in size_text)
            ):
                raise HttpError(400, "BadRequest", "malformed chunk size")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > self.limits.max_body:
                raise HttpError(
                    413,
                    "RequestEntityTooLarge",
                    f"chunked body exceeds the limit of {self.limits.max_body} bytes",
                )
            parts.append(self._exactly(size, deadline))
            if self._exactly(2, deadline) != b"\r\n":
                raise HttpError(400, "BadRequest", "chunk not followed by CRLF")
        # Trailers: read and drop up to the empty line, bounded like a head.
        for _ in range(self.limits.max_headers + 1):
            if not self._line(deadline):
                return b"".join(parts)
        raise HttpError(400, "BadRequest", "too many trailers")


def _parse_head(head: bytes, limits: Limits) -> tuple[str, str, str, dict[str, str]]:
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError as exc:
        raise HttpError(400, "BadRequest", "request head is not ASCII") from exc
    lines = text.lstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(400, "BadRequest", "malformed request line")
    method, target, version = parts
    if not method.isalpha() or not method.isupper() or not target.startswith("/"):
        raise HttpError(400, "BadRequest", "malformed request line")
    if len(lines) - 1 > limits.max_headers:
        raise HttpError(431, "HeadersTooLarge", "too many headers")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or any(c in name for c in " \t"):
            raise HttpError(400, "BadRequest", "malformed header line")
        key = name.lower()
        if key in headers and key in ("content-length", "transfer-encoding", "host"):
            raise HttpError(400, "BadRequest", f"duplicate {name} header")
        headers[key] = value.strip(" \t")
    path = target.split("?", 1)[0]
    return method, path, version, headers


_REASONS = {
    100: "Continue",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


def _error(error_type: str, message: str) -> dict[str, str]:
    return {"errorType": error_type, "errorMessage": message}


def _send(
    conn: socket.socket,
    status: int,
    document: dict[str, str],
    *,
    close: bool = False,
    timeout: float = 30.0,
) -> None:
    body = json.dumps(document).encode()
    headers = {"Content-Type": "application/json"}
    if close:
        headers["Connection"] = "close"
    _send_raw(conn, status, body, headers, timeout=timeout)


def _send_raw(
    conn: socket.socket,
    status: int,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float = 30.0,
) -> None:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    for name, value in headers.items():
        # Header values we send come from our own invocation; refuse to split a response.
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name} holds a line break")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    try:
        conn.settimeout(timeout)
        conn.sendall(data)
    except OSError:
        pass  # the client left; its loss


def _method_not_allowed(conn: socket.socket, allowed: str) -> bool:
    _send_raw(
        conn,
        405,
        json.dumps(_error("MethodNotAllowed", f"use {allowed}")).encode(),
        {"Content-Type": "application/json", "Allow": allowed},
    )
    return True


def _shutdown(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()


def _new_trace_id() -> str:
    """An X-Ray trace header as Lambda sends it (root, parent, not sampled)."""
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=0"
