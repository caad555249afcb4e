"""The Runtime API server at the HTTP level: the happy path, and clients that misbehave."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import pytest

from lifecycle.errors import UsageError
from lifecycle.run.runtime_api import Invocation, Limits, RuntimeApiServer, parse_error

NEXT = "/2018-06-01/runtime/invocation/next"


@pytest.fixture
def server() -> Iterator[RuntimeApiServer]:
    invocation = Invocation(event=b'{"k": 1}', function_name="fn", timeout_seconds=5)
    limits = Limits(max_body=1024, head_seconds=1.0, body_seconds=1.0, max_connections=4)
    with RuntimeApiServer(invocation, limits=limits) as running:
        yield running


def _conn(server: RuntimeApiServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)


def _next(server: RuntimeApiServer) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = _conn(server)
    conn.request("GET", NEXT)
    return conn, conn.getresponse()


def _raw(server: RuntimeApiServer, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send raw bytes; return the first full response (or what came before close or ``wait``)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # refused mid-send (e.g. 413): the answer may still be readable
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                head, sep, body = received.partition(b"\r\n\r\n")
                if sep and head.startswith(b"HTTP/1.1 100 "):
                    received = body
                    continue
                if sep:
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.lower() == b"content-length":
                            length = int(value)
                    if len(body) >= length:
                        break
        except (TimeoutError, ConnectionResetError):
            pass
    return received


def test_next_sends_every_header_and_the_event(server: RuntimeApiServer) -> None:
    before = time.time() * 1000
    _unused, answer = _next(server)
    assert answer.status == 200
    assert answer.read() == b'{"k": 1}'
    headers = {k.lower(): v for k, v in answer.getheaders()}
    request_id = server.invocation.request_id
    assert headers["lambda-runtime-aws-request-id"] == request_id
    assert headers["lambda-runtime-invoked-function-arn"].endswith(":function:fn")
    assert headers["lambda-runtime-trace-id"].startswith("Root=1-")
    # Present even when empty: awslambdaric 4.x crashes without them.
    assert headers["lambda-runtime-client-context"] == ""
    assert headers["lambda-runtime-cognito-identity"] == ""
    deadline = int(headers["lambda-runtime-deadline-ms"])
    assert before + 4000 <= deadline <= time.time() * 1000 + 5000


def test_response_is_the_result(server: RuntimeApiServer) -> None:
    conn, answer = _next(server)
    answer.read()
    request_id = server.invocation.request_id
    conn.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/response", body=b'"hi"')
    posted = conn.getresponse()
    assert posted.status == 202
    posted.read()
    result = server.wait(timeout=5)
    assert result is not None and result.ok and result.payload == b'"hi"'
    # A second answer for the same invocation is refused.
    conn.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/error", body=b"{}")
    again = conn.getresponse()
    assert again.status == 400
    assert json.loads(again.read())["errorType"] == "InvalidStateTransition"
    assert server.wait(timeout=0) == result


def test_error_with_and_without_the_type_header(server: RuntimeApiServer) -> None:
    conn, answer = _next(server)
    answer.read()
    body = json.dumps({"errorMessage": "bad", "errorType": "Oops", "stackTrace": ["a", "b"]})
    conn.request(
        "POST",
        f"/2018-06-01/runtime/invocation/{server.invocation.request_id}/error",
        body=body,
        headers={"Lambda-Runtime-Function-Error-Type": "Unhandled"},
    )
    assert conn.getresponse().status == 202
    result = server.wait(timeout=5)
    assert result is not None and result.kind == "error" and result.error is not None
    assert result.error.document() == {
        "errorMessage": "bad",
        "errorType": "Oops",
        "stackTrace": ["a", "b"],
    }


def test_parse_error_is_lenient() -> None:
    assert parse_error(b"not json", "Unhandled").error_type == "Unhandled"
    assert parse_error(b"[1]").error_type == "Runtime.Unknown"
    assert parse_error(b'{"stackTrace": "a\\nb"}').stack_trace == ("a", "b")
    assert parse_error(b"\xff\xfe").error_message
    assert parse_error(b'{"trace": ["x"], "errorType": "E"}').stack_trace == ("x",)


def test_wrong_request_id_is_400(server: RuntimeApiServer) -> None:
    conn, answer = _next(server)
    answer.read()
    conn.request("POST", "/2018-06-01/runtime/invocation/not-the-id/response", body=b"{}")
    refused = conn.getresponse()
    assert refused.status == 400
    assert json.loads(refused.read())["errorType"] == "InvalidRequestID"
    assert server.wait(timeout=0) is None


def test_response_before_next_is_refused(server: RuntimeApiServer) -> None:
    conn = _conn(server)
    conn.request(
        "POST", f"/2018-06-01/runtime/invocation/{server.invocation.request_id}/response", body=b"1"
    )
    assert conn.getresponse().status == 400
    assert server.wait(timeout=0) is None


def test_init_error(server: RuntimeApiServer) -> None:
    conn = _conn(server)
    conn.request(
        "POST",
        "/2018-06-01/runtime/init/error",
        body=json.dumps({"errorMessage": "m", "errorType": "Runtime.ImportModuleError"}),
    )
    assert conn.getresponse().status == 202
    result = server.wait(timeout=5)
    assert result is not None and result.kind == "init-error"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"garbage\r\n\r\n", 400),
        (b"GET /2018-06-01/runtime/invocation/next HTTP/2.0\r\n\r\n", 400),
        (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"DELETE /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n", 405),
        (b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
        (b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nX: \xff\r\n\r\n", 400),
        (b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\n\r\n", 411),
        (b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (
            b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nContent-Length: 1\r\n"
            b"Content-Length: 2\r\n\r\n",
            400,
        ),
        (
            b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (
            b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\n",
            400,
        ),
        (
            b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
            413,
        ),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 100 + b"\r\n", 431),
    ],
    ids=[
        "garbage",
        "http2-line",
        "unknown-path",
        "wrong-method",
        "space-in-header-name",
        "non-ascii-header",
        "post-without-length",
        "negative-length",
        "two-lengths",
        "length-and-chunked",
        "bad-chunk-size",
        "huge-length",
        "huge-request-line",
        "too-many-headers",
    ],
)
def test_hostile_requests_get_4xx(
    server: RuntimeApiServer, request_bytes: bytes, status: int
) -> None:
    answer = _raw(server, request_bytes)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert server.wait(timeout=0) is None


def test_huge_chunked_body_is_413(server: RuntimeApiServer) -> None:
    head = b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    answer = _raw(server, head + chunk * 3)
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_chunked_body_and_expect_continue(server: RuntimeApiServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b'5\r\n{"err\r\n14;ext=1\r\norMessage": "split"}\r\n0\r\nTrailer: x\r\n\r\n')
        assert sock.recv(1000).startswith(b"HTTP/1.1 202 ")
    result = server.wait(timeout=5)
    assert result is not None and result.error is not None
    assert result.error.error_message == "split"


def test_slow_loris_head_is_cut_off(server: RuntimeApiServer) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n")
        answer = b""
        for _ in range(40):  # one header byte every 0.1 s: never a whole head within 1 s
            try:
                sock.sendall(b"X")
            except OSError:
                break
            time.sleep(0.1)
        try:
            answer = sock.recv(1000)
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 5
    # The event was never handed out to the slow client.
    assert not server.delivered


def test_slow_body_is_cut_off(server: RuntimeApiServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nContent-Length: 100\r\n\r\nx"
        )
        sock.settimeout(5)
        assert sock.recv(1000).startswith(b"HTTP/1.1 408 ")


def test_connection_flood_is_bounded(server: RuntimeApiServer) -> None:
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
    try:
        time.sleep(0.3)
        assert _raw(server, b"GET " + NEXT.encode() + b" HTTP/1.1\r\n\r\n").startswith(
            b"HTTP/1.1 503 "
        )
    finally:
        for sock in idle:
            sock.close()
    # Once the idle ones are gone, a real client gets in.
    deadline = time.monotonic() + 5
    while True:
        answer = _raw(server, b"GET " + NEXT.encode() + b" HTTP/1.1\r\n\r\n", wait=2)
        if answer.startswith(b"HTTP/1.1 200 ") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_second_next_waits_until_close() -> None:
    server = RuntimeApiServer(Invocation(event=b"{}")).start()
    try:
        _first_conn, first = _next(server)
        first.read()
        parked = _conn(server)
        parked.timeout = 1
        parked.request("GET", NEXT)
        with pytest.raises(TimeoutError):
            parked.getresponse()
    finally:
        started = time.monotonic()
        server.close()
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "fields",
    [
        {"client_context": "a\r\nInjected: 1"},
        {"function_name": "fn\n"},
        {"request_id": "a/b"},
        {"cognito_identity": "é"},
        {"timeout_seconds": 0},
    ],
)
def test_hostile_invocations_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        Invocation(event=b"{}", **fields)  # type: ignore[arg-type]


def test_silent_connections_are_dropped(server: RuntimeApiServer) -> None:
    # A connection that never sends a request only holds a slot for head_seconds (1 s here).
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server, no answer
        assert time.monotonic() - started < 3
