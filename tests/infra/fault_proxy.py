"""A loopback HTTP proxy in front of a registry that injects faults on request.

Tests add :class:`Fault` rules: the next ``times`` requests whose method and path match get
the fault instead of (or on top of) the registry's answer. Every request is recorded, so a
test can tell what the client did after a fault.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Action = Literal["status", "drop-request", "drop-response", "corrupt", "redirect"]


@dataclass
class Fault:
    """One rule: ``action`` for the next ``times`` requests matching ``method`` and ``path``.

    ``status`` answers ``code`` (with ``Retry-After: retry_after`` when set); ``drop-request``
    reads half the request body and closes; ``drop-response`` sends half the body and closes;
    ``corrupt`` flips one byte of the body; ``redirect`` sends a 307 to ``location``.
    """

    method: str
    path: str
    action: Action
    times: int = 1
    code: int = 503
    retry_after: str | None = None
    location: str = ""

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule applies to a request (and has uses left)."""
        return self.times > 0 and method == self.method and re.search(self.path, path) is not None


@dataclass
class FaultProxy:
    """A running proxy: ``host`` is "127.0.0.1:PORT"; ``seen`` lists (method, path, status)."""

    host: str
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    # The Authorization header of each request (None when absent), in order.
    authorizations: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *faults: Fault) -> None:
        """Arm ``faults`` (in addition to those still armed)."""
        with self.lock:
            self.faults.extend(faults)

    def clear(self) -> None:
        """Disarm every fault and forget what was seen."""
        with self.lock:
            self.faults.clear()
            self.seen.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """Use up one matching fault, if any."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None


@contextmanager
def running_fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """Proxy 127.0.0.1:<free port> to ``upstream`` ("127.0.0.1:PORT", plain HTTP)."""
    up_host, _, up_port = upstream.rpartition(":")
    state: dict[str, FaultProxy] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:
            pass

        def _handle(self) -> None:
            proxy = state["proxy"]
            proxy.authorizations.append(self.headers.get("Authorization"))
            fault = proxy.take(self.command, self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if fault is not None and fault.action == "drop-request":
                self.rfile.read(length // 2)
                proxy.seen.append((self.command, self.path, 0))
                self.close_connection = True
                self.connection.close()
                return
            body = self.rfile.read(length) if length else b""
            if fault is not None and fault.action in ("status", "redirect"):
                code = fault.code if fault.action == "status" else 307
                proxy.seen.append((self.command, self.path, code))
                self.send_response(code)
                if fault.retry_after is not None:
                    self.send_header("Retry-After", fault.retry_after)
                if fault.action == "redirect":
                    self.send_header("Location", fault.location)
                payload = (b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
                           if fault.action == "status" else b"")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            connection = http.client.HTTPConnection(up_host, int(up_port), timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            connection.close()
            proxy.seen.append((self.command, self.path, answer.status))
            if fault is not None and fault.action == "corrupt" and data:
                data = bytes([data[0] ^ 1]) + data[1:]
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command == "HEAD":
                return
            if fault is not None and fault.action == "drop-response":
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.close()
                return
            self.wfile.write(data)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    state["proxy"] = FaultProxy(f"127.0.0.1:{port}", upstream)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["proxy"]
    finally:
        httpd.shutdown()
        httpd.server_close()
