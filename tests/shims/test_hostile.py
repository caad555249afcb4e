"""Hostile HTTP clients and handlers, written once and run against both httpd shims.

Every test has a socket timeout: a shim that hangs fails the test instead of stalling the run.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance import runner

REPO = Path(__file__).resolve().parents[2]
HOSTILE = Path(__file__).resolve().parent / "hostile"
PYTHON = os.environ.get("HYBRIDLESS_TEST_PYTHON", sys.executable)
ARGV = {
    "node": ["node", str(REPO / "buildpacks" / "nodejs" / "shim" / "index.mjs")],
    "python": [PYTHON, "-m", "hybridless_shim"],
}
RESULT_NAMES = sorted(json.loads((HOSTILE / "results.json").read_text("utf-8")))
TIMEOUT_S = 5.0


class Shims:
    """One shim per (language, format, extra env), started on first use."""

    def __init__(self) -> None:
        self._running: dict[tuple[str, ...], runner.Shim] = {}

    def get(self, language: str, http_format: str = "apigw-v1", **extra: str) -> runner.Shim:
        """A running shim of ``language`` serving the hostile handler in ``http_format``."""
        key = (language, http_format, *sorted(f"{k}={v}" for k, v in extra.items()))
        shim = self._running.get(key)
        if shim is None or shim.process.poll() is not None:
            env = {
                "PYTHONPATH": str(REPO / "buildpacks" / "python" / "shim"),
                "LAMBDA_TASK_ROOT": str(HOSTILE),
                "ENTRYPOINT": "handler",
                "ENTRYPOINT_FUNC": "handler",
                "HYBRIDLESS_EVENT_TYPE": "httpd",
                "HYBRIDLESS_HTTP_FORMAT": http_format,
                "HEALTH_ROUTE": "/health",
                **extra,
            }
            shim = runner.start_shim(ARGV[language], env=env, cwd=HOSTILE)
            self._running[key] = shim
        return shim

    def close(self) -> None:
        """Stop every shim started."""
        for shim in self._running.values():
            shim.stop()


@pytest.fixture(scope="module")
def shims() -> Iterator[Shims]:
    started = Shims()
    yield started
    started.close()


def exchange(shim: runner.Shim, raw: bytes) -> tuple[bytes, bool]:
    """Send raw bytes; return everything answered and whether the shim closed the connection."""
    with socket.create_connection(("127.0.0.1", shim.port), timeout=TIMEOUT_S) as sock:
        sock.sendall(raw)
        received = b""
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return received, False
            except ConnectionResetError:
                return received, True
            if not chunk:
                return received, True
            received += chunk
        return received, False


HEAD = b"Host: x\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
CHUNKED = b"POST / HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
FRAMING = {
    # RFC 9112 §6.1: both framings at once.
    "cl-and-te": b"POST / HTTP/1.1\r\n" + HEAD
    + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te-and-cl": b"POST / HTTP/1.1\r\n" + HEAD
    + b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + SMUGGLED,
    # RFC 9110 §8.6: differing Content-Lengths.
    "two-content-lengths": b"POST / HTTP/1.1\r\n" + HEAD
    + b"Content-Length: 2\r\nContent-Length: 40\r\n\r\nab" + SMUGGLED,
    # RFC 9112 §6.3: chunked must be the final (here: the only) coding.
    "te-gzip": b"POST / HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: gzip\r\n\r\n" + SMUGGLED,
    "te-chunked-identity": b"POST / HTTP/1.1\r\n" + HEAD
    + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te-xchunked": b"POST / HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te-split-over-lines": b"POST / HTTP/1.1\r\n" + HEAD
    + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" + SMUGGLED,
    # RFC 9112 §7.1: chunk-size = 1*HEXDIG.
    "chunk-negative": b"POST / HTTP/1.1\r\n" + HEAD
    + b"Transfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n",
    # -6 sends the old parser back to the start of its own size line, forever.
    "chunk-negative-loop": b"POST / HTTP/1.1\r\n" + HEAD
    + b"Transfer-Encoding: chunked\r\n\r\n-6\r\nx\r\n0\r\n\r\n",
    "chunk-plus": CHUNKED + b"+2\r\nab\r\n0\r\n\r\n",
    "chunk-0x": CHUNKED + b"0x2\r\nab\r\n0\r\n\r\n",
    "chunk-underscore": b"POST / HTTP/1.1\r\n" + HEAD
    + b"Transfer-Encoding: chunked\r\n\r\n1_0\r\n0123456789abcdef\r\n0\r\n\r\n",
    "chunk-non-ascii-digit": b"POST / HTTP/1.1\r\n" + HEAD
    + b"Transfer-Encoding: chunked\r\n\r\n" + "\u0662".encode() + b"\r\nab\r\n0\r\n\r\n",
    "chunk-data-overlong": b"POST / HTTP/1.1\r\n" + HEAD
    + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n",
    # RFC 9110 §8.6: Content-Length = 1*DIGIT, ASCII.
    "cl-superscript": b"POST / HTTP/1.1\r\n" + HEAD + "Content-Length: \u00b2\r\n\r\nab".encode(),
    "cl-arabic-indic": b"POST / HTTP/1.1\r\n" + HEAD + "Content-Length: \u0663\r\n\r\nabc".encode(),
    "cl-negative": b"POST / HTTP/1.1\r\n" + HEAD + b"Content-Length: -1\r\n\r\n",
    # RFC 9112 §2.2 and §5: bare LF, whitespace before the colon, obsolete folding.
    "bare-lf-in-headers": b"GET / HTTP/1.1\r\n" + HEAD + b"X-A: 1\nX-B: 2\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\n" + HEAD + b"X-A : 1\r\n\r\n",
    # U+212A KELVIN SIGN lower-cases to an ASCII "k": the name must be checked as sent.
    "non-ascii-name": b"GET / HTTP/1.1\r\n" + HEAD + "\u212a: 1\r\n\r\n".encode(),
    "obs-fold": b"GET / HTTP/1.1\r\n" + HEAD + b"X-A: 1\r\n  continued\r\n\r\n",
    # RFC 9112 §3: an empty request target.
    "empty-target": b"GET  HTTP/1.1\r\n" + HEAD + b"\r\n",
}


@pytest.mark.parametrize("language", ["node", "python"])
@pytest.mark.parametrize("name", sorted(FRAMING))
def test_ambiguous_framing_is_400_and_closes(shims: Shims, language: str, name: str) -> None:
    shim = shims.get(language)
    received, closed = exchange(shim, FRAMING[name])
    assert received.startswith(b"HTTP/1.1 400 "), (name, received[:200], shim.output()[-2000:])
    assert received.count(b"HTTP/1.1 ") == 1, f"{name}: a second response was served: {received!r}"
    assert closed, f"{name}: the connection stayed open after the 400"
    assert "Traceback" not in shim.output()
    # The shim still serves the next client.
    after, _ = exchange(shim, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert after.startswith(b"HTTP/1.1 200 "), after[:200]


@pytest.mark.parametrize("language", ["node", "python"])
def test_valid_chunked_body_with_extension_still_works(shims: Shims, language: str) -> None:
    raw = (
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n"
        b"A;name=value\r\n0123456789\r\n0\r\n\r\n"
    )
    received, closed = exchange(shims.get(language), raw)
    assert received.startswith(b"HTTP/1.1 200 "), received[:300]
    assert closed


def _get(shim: runner.Shim, path: str, **headers: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", shim.port, timeout=TIMEOUT_S)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


FORMAT_OF = {"status-description-crlf": "alb", "cookie-crlf": "apigw-v2"}
INJECTIONS = [n for n in RESULT_NAMES if n != "fine"]
# Python only: JSON (and JavaScript object keys) cannot spell a name that is not a string.
NOT_STRING_NAMES = ("name-not-string", "multi-name-not-string")


@pytest.mark.parametrize("language", ["node", "python"])
@pytest.mark.parametrize("result", [*INJECTIONS, *NOT_STRING_NAMES])
def test_handler_cannot_inject_headers(shims: Shims, language: str, result: str) -> None:
    if result in NOT_STRING_NAMES and language == "node":
        pytest.skip("JavaScript object keys are always strings")
    shim = shims.get(language, FORMAT_OF.get(result, "apigw-v1"))
    before = len(shim.output())
    response = _get(shim, "/inject", **{"X-Hostile": result})
    assert response.status == 502, (result, response.status, response.getheaders())
    names = {name.lower() for name, _ in response.getheaders()}
    assert "set-cookie" not in names and "x-a" not in names, response.getheaders()
    time.sleep(0.1)  # the log line is written right after the answer
    log = shim.output()[before:]
    assert "header" in log.lower() or "statusdescription" in log.lower(), log
    assert "Traceback (most recent call last)" not in log


@pytest.mark.parametrize("language", ["node", "python"])
@pytest.mark.parametrize("multi", [False, True])
def test_name_in_the_log_line(shims: Shims, language: str, multi: bool) -> None:
    shim = shims.get(language)
    before = len(shim.output())
    _get(shim, "/inject", **{"X-Hostile": "multi-name-crlf" if multi else "name-space"})
    time.sleep(0.1)
    lines = shim.output()[before:].splitlines()
    wanted = ("X-A", "Set-Cookie: evil=1") if multi else ("X A",)
    # One line names the refused header (escaped as each shim's log escapes a CR LF).
    assert any(all(part in line for part in wanted) for line in lines), lines


@pytest.mark.parametrize("language", ["node", "python"])
def test_well_formed_headers_still_pass(shims: Shims, language: str) -> None:
    response = _get(shims.get(language), "/fine", **{"X-Hostile": "fine"})
    assert response.status == 200
    assert response.getheader("x-a") == "a b"
    assert response.getheader("set-cookie") == "good=1"


@pytest.mark.parametrize("language", ["node", "python"])
def test_health_is_503_while_every_slot_is_stuck_then_200_again(
    shims: Shims, language: str
) -> None:
    shim = shims.get(language, HYBRIDLESS_CONCURRENCY="1", TIMEOUT="200")
    assert _get(shim, "/health").status == 200
    assert _get(shim, "/stuck", **{"X-Hostile": "sleep"}).status == 504
    wedged = _get(shim, "/health")
    assert wedged.status == 503
    # Once the stuck call returns, the slot is usable and the task healthy again.
    deadline = time.monotonic() + 5
    while _get(shim, "/health").status != 200:
        assert time.monotonic() < deadline, "health stayed 503 after the stuck call returned"
        time.sleep(0.1)
    assert _get(shim, "/fine", **{"X-Hostile": "fine"}).status == 200
