"""The Python shim's own behaviour, run as a real ``python3 -m hybridless_shim`` process.

What both shims share (the conformance corpus, tasks, signals, concurrency, keep-alive, body
limits) runs once against each in test_both.py; this file keeps what only this shim has:
sync and async handlers, timeouts, its HTTP/1.1 parser, the Runtime API client, the local
emulator, and Mangum end to end. Set HYBRIDLESS_TEST_PYTHON to a python binary to run
everything on another Python release (3.10 to 3.13).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import runner
from tests.infra.images import cache_root
from tests.infra.services import unavailable

REPO = Path(__file__).resolve().parents[2]
SHIM_PATH = REPO / "buildpacks" / "python" / "shim"
FIXTURES = Path(__file__).resolve().parent / "python_fixtures"
APP = FIXTURES / "app"
TASKS = FIXTURES / "tasks"
PYTHON = os.environ.get("HYBRIDLESS_TEST_PYTHON", sys.executable)
ARGV = [PYTHON, "-m", "hybridless_shim"]
CASES = runner.load_cases()


def shim_env(app: Path, **extra: str) -> dict[str, str]:
    """Environment for a shim serving ``app``; ``extra`` overrides it."""
    return {
        "PYTHONPATH": str(SHIM_PATH),
        "LAMBDA_TASK_ROOT": str(app),
        "HYBRIDLESS_EVENT_TYPE": "httpd",
        **extra,
    }


def start(**extra: str) -> runner.Shim:
    """Start an httpd shim on the ``app`` fixture and wait until it listens."""
    return runner.start_shim(ARGV, env=shim_env(APP, **extra), cwd=APP)


def run_task(func: str, event_type: str, *args: str, **extra: str) -> tuple[int, str, str]:
    """Run a task event type to completion; return (exit code, stdout, stderr)."""
    env = {
        **os.environ,
        **shim_env(TASKS, HYBRIDLESS_EVENT_TYPE=event_type, ENTRYPOINT="task"),
        "ENTRYPOINT_FUNC": func,
        **extra,
    }
    done = subprocess.run(
        [*ARGV, *args], cwd=TASKS, env=env, capture_output=True, text=True, timeout=30
    )
    return done.returncode, done.stdout, done.stderr


def last_line(stdout: str) -> Any:
    """The task contract's result: the last stdout line, as JSON."""
    return json.loads(stdout.rstrip("\n").split("\n")[-1])


def request(
    url: str, method: str, path: str, body: bytes | None = None, timeout: float = 10, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection; returns (status, lower-cased headers, body)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(
            method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()}
        )
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def get(url: str, path: str, timeout: float = 10) -> tuple[int, bytes]:
    """GET ``path``; returns (status, body)."""
    status, _, body = request(url, "GET", path, timeout=timeout)
    return status, body


# --- errors in the log (the corpus itself runs against both shims in test_both.py) ---


@pytest.fixture(scope="module")
def pool() -> Iterator[runner.ShimPool]:
    with runner.ShimPool(ARGV, base_env={"PYTHONPATH": str(SHIM_PATH)}) as shims:
        yield shims


def test_errors_are_logged_with_their_traceback(pool: runner.ShimPool) -> None:
    case = next(c for c in CASES if c.name == "v1-throw")
    runner.check_case(pool.url_for(case), case)
    logs = "\n".join(shim.output() for shim in pool.shims())
    assert "[ERROR]" in logs and "Exception: boom" in logs
    assert "handler.py" in logs, "the traceback names the handler's file"


# --- loading the handler ---


@pytest.mark.parametrize(
    ("app", "func", "error_type", "message"),
    [
        ("broken", "handler", "Runtime.ImportModuleError", "Unable to import module 'handler'"),
    ],
)
def test_load_error_fails_fast(app: str, func: str, error_type: str, message: str) -> None:
    env = {**os.environ, **shim_env(FIXTURES / app, ENTRYPOINT="handler", ENTRYPOINT_FUNC=func)}
    done = subprocess.run(
        ARGV, cwd=FIXTURES / app, env=env, capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 1
    assert error_type in done.stderr and message in done.stderr


def test_task_root_comes_first_on_sys_path(tmp_path: Path) -> None:
    # A module in the app must win over a same-named module on PYTHONPATH (the deps layer).
    deps = tmp_path / "deps"
    deps.mkdir()
    (deps / "helper.py").write_text("WHO = 'deps'\n")
    app = tmp_path / "app"
    (app / "pkg").mkdir(parents=True)
    (app / "helper.py").write_text("WHO = 'app'\n")
    (app / "pkg" / "__init__.py").write_text("")
    (app / "pkg" / "main.py").write_text(
        "import helper\n"
        "def run(event, context):\n"
        "    return {'statusCode': 200, 'who': helper.WHO}\n"
    )
    env = {
        **os.environ,
        **shim_env(app, HYBRIDLESS_EVENT_TYPE="launchableTask", ENTRYPOINT="pkg/main"),
        "ENTRYPOINT_FUNC": "run",
        "PYTHONPATH": f"{SHIM_PATH}{os.pathsep}{deps}",
    }
    done = subprocess.run(ARGV, cwd=app, env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert last_line(done.stdout) == {"statusCode": 200, "who": "app"}


# --- task event types (CONTRACT §4) ---


def run_tasks(*runs: tuple[Any, ...]) -> list[tuple[int, str, str]]:
    """Run several ``run_task`` calls at once (interpreter start-up dominates their time)."""
    with ThreadPoolExecutor(max_workers=len(runs)) as workers:
        return list(workers.map(lambda args: run_task(*args[:-1], **args[-1]), runs))


def test_launchable_details() -> None:
    chatty, no_arg, unserializable, async_ok, decimal = run_tasks(
        ("chatty", "launchableTask", "{}", {}),
        ("echo", "launchableTask", {}),
        ("unserializable", "launchableTask", "{}", {}),
        ("async_ok", "job", "{}", {}),
        ("decimal_result", "job", "{}", {}),
    )
    assert (decimal[0], last_line(decimal[1])) == (0, {"done": True, "amount": 1.5})
    # The result is the last line even when the handler left a line unfinished.
    assert chatty[0] == 0
    assert chatty[1].startswith("working on it\nno newline here\n")
    assert last_line(chatty[1]) == {"statusCode": 200}
    assert last_line(no_arg[1]) == {"got": {}}
    assert unserializable[0] == 1
    assert last_line(unserializable[1])["errorType"] == "Runtime.MarshalError"
    assert (async_ok[0], last_line(async_ok[1])) == (
        0, {"statusCode": 200, "remaining_positive": True},
    )  # fmt: skip



def test_scheduled_task_argument_that_is_not_json_exits_64() -> None:
    # The Python shim refuses it; Node passes a plain-text argument on as a string.
    (bad,) = run_tasks(("show", "scheduledTask", "{oops", {}))
    assert bad[0] == 64

# --- httpd behaviour beyond the corpus ---


@pytest.fixture
def shim(request: pytest.FixtureRequest) -> Iterator[runner.Shim]:
    params = {"ENTRYPOINT": "handlers", "ENTRYPOINT_FUNC": "sleepy", "HEALTH_ROUTE": "/health"}
    params.update(getattr(request, "param", {}))
    running = start(**params)
    yield running
    running.stop()


@pytest.mark.parametrize(
    "shim", [{"ENTRYPOINT_FUNC": "sleepy", "TIMEOUT": "500"},
             {"ENTRYPOINT_FUNC": "spin", "TIMEOUT": "500"}],
    indirect=True, ids=["sleeping", "cpu-bound"],
)  # fmt: skip
def test_sync_timeout_is_on_time_and_health_keeps_answering(shim: runner.Shim) -> None:
    with ThreadPoolExecutor(max_workers=1) as workers:
        started = time.monotonic()
        pending = workers.submit(request, shim.url, "GET", "/x?ms=2500")
        health_times = []
        while not pending.done():
            t0 = time.monotonic()
            status, body = get(shim.url, "/health", timeout=5)
            health_times.append(time.monotonic() - t0)
            assert (status, body) == (200, b"Healthy!")
            time.sleep(0.05)
        status, _, body = pending.result()
        elapsed = time.monotonic() - started
    assert status == 504
    assert json.loads(body) == {"message": "Endpoint request timed out"}
    assert 0.45 < elapsed < 1.0, f"the 504 came after {elapsed:.2f}s, not at 0.5s"
    assert len(health_times) >= 3
    assert max(health_times) < 0.1, f"health checks took up to {max(health_times):.3f}s"
    # The slot stays taken while the thread runs, but other requests are still answered.
    assert get(shim.url, "/x?ms=1")[0] == 200


@pytest.mark.parametrize("shim", [{"ENTRYPOINT_FUNC": "async_sleepy"}], indirect=True)
def test_async_handlers_overlap_on_the_loop(shim: runner.Shim) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as workers:
        results = list(workers.map(lambda _: get(shim.url, "/a?ms=500"), range(10)))
    elapsed = time.monotonic() - started
    assert all(status == 200 for status, _ in results)
    assert 20000 < json.loads(results[0][1])["remaining"] <= 30000
    assert elapsed < 1.4, f"10 async requests of 500 ms took {elapsed:.2f}s"


@pytest.mark.parametrize(
    "shim", [{"ENTRYPOINT_FUNC": "async_sleepy", "TIMEOUT": "300"}], indirect=True
)
def test_async_timeout_is_504(shim: runner.Shim) -> None:
    started = time.monotonic()
    assert get(shim.url, "/a?ms=3000")[0] == 504
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("shim", [{"ENTRYPOINT_FUNC": "async_in_task"}], indirect=True)
def test_async_handlers_run_inside_a_task(shim: runner.Shim) -> None:
    status, body = get(shim.url, "/t")
    assert (status, json.loads(body)) == (200, {"in_task": True})


@pytest.mark.parametrize("shim", [{"ENTRYPOINT_FUNC": "async_boom"}], indirect=True)
def test_async_error_is_502(shim: runner.Shim) -> None:
    status, body = get(shim.url, "/e")
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
    assert "RuntimeError: async boom" in shim.output()


@pytest.mark.parametrize("shim", [{"ENTRYPOINT_FUNC": "returns_coroutine"}], indirect=True)
def test_sync_handler_returning_a_coroutine(shim: runner.Shim) -> None:
    assert get(shim.url, "/a?ms=10")[0] == 200


@pytest.mark.parametrize("shim", [{"ENTRYPOINT_FUNC": "echo"}], indirect=True)
def test_pipelined_requests_are_answered_in_order(shim: runner.Shim) -> None:
    with socket.create_connection(("127.0.0.1", shim.port), timeout=5) as sock:
        sock.sendall(b"".join(
            f"GET /p{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(3)
        ) + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # fmt: skip
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    paths = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        paths.append(json.loads(rest[:length])["path"])
        data = rest[length:]
    assert paths == ["/p0", "/p1", "/p2", "/last"]


@pytest.mark.parametrize("shim", [{"ENTRYPOINT_FUNC": "echo"}], indirect=True)
def test_http10_closes_unless_asked_to_keep_alive(shim: runner.Shim) -> None:
    with socket.create_connection(("127.0.0.1", shim.port), timeout=5) as sock:
        sock.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk  # the server closes: recv returns b""
    assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in data


@pytest.mark.parametrize(
    "shim", [{"ENTRYPOINT_FUNC": "big", "HYBRIDLESS_BODY_LIMIT": "100000"}], indirect=True
)
def test_large_body_over_limit_is_413_before_it_is_read(shim: runner.Shim) -> None:
    body = b"z" * 2_000_000
    status, _, payload = request(shim.url, "POST", "/u", body, Content_Type="text/plain")
    assert (status, json.loads(payload)) == (413, {"message": "Request Entity Too Large"})
    # A body at the limit goes through, in many TCP segments.
    status, _, payload = request(shim.url, "POST", "/u", b"a" * 100_000, Content_Type="text/plain")
    assert (status, payload) == (200, b"100000")


@pytest.mark.parametrize("shim", [{"ENTRYPOINT_FUNC": "echo"}], indirect=True)
def test_malformed_request_is_400(shim: runner.Shim) -> None:
    with socket.create_connection(("127.0.0.1", shim.port), timeout=5) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        data = sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 400 ")


# --- lambdaContainer: a Runtime API client, and the local emulator ---


@dataclass
class FakeRuntimeApi:
    """A minimal Lambda Runtime API: hands out queued events and records what comes back."""

    events: queue.Queue[tuple[dict[str, str], bytes]] = field(default_factory=queue.Queue)
    posts: queue.Queue[tuple[str, dict[str, str], Any]] = field(default_factory=queue.Queue)
    address: str = ""


@pytest.fixture
def runtime_api() -> Iterator[FakeRuntimeApi]:
    api = FakeRuntimeApi()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            assert self.path == "/2018-06-01/runtime/invocation/next"
            headers, body = api.events.get()
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"null")
            api.posts.put((self.path, dict(self.headers.items()), payload))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    api.address = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield api
    server.shutdown()
    server.server_close()


def _container(app: Path, func: str, **extra: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        **shim_env(app, HYBRIDLESS_EVENT_TYPE="lambdaContainer", ENTRYPOINT="handlers"),
        "ENTRYPOINT_FUNC": func,
        **extra,
    }
    return subprocess.Popen(
        ARGV, cwd=app, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_runtime_api_success_and_error(runtime_api: FakeRuntimeApi, tmp_path: Path) -> None:
    (tmp_path / "handlers.py").write_text(
        "import os\n"
        "def handler(event, context):\n"
        "    if event.get('fail'):\n"
        "        raise KeyError('nope')\n"
        "    return {'event': event, 'id': context.aws_request_id,\n"
        "            'arn': context.invoked_function_arn,\n"
        "            'remaining': context.get_remaining_time_in_millis(),\n"
        "            'trace': os.environ.get('_X_AMZN_TRACE_ID'),\n"
        "            'client': getattr(context.client_context, 'custom', None),\n"
        "            'identity': context.identity.cognito_identity_id}\n"
    )
    deadline = str(int(time.time() * 1000) + 60_000)
    runtime_api.events.put((
        {"Lambda-Runtime-Aws-Request-Id": "req-1", "Lambda-Runtime-Deadline-Ms": deadline,
         "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:eu-west-1:123456789012:function:f",
         "Lambda-Runtime-Trace-Id": "Root=1-abc",
         "Lambda-Runtime-Client-Context": json.dumps({"custom": {"k": "v"}}),
         "Lambda-Runtime-Cognito-Identity": json.dumps({"cognitoIdentityId": "id-7"})},
        b'{"n": 1}',
    ))  # fmt: skip
    # The second invocation carries none of the optional headers.
    runtime_api.events.put(({"Lambda-Runtime-Aws-Request-Id": "req-2"}, b'{"fail": true}'))
    proc = _container(tmp_path, "handler", AWS_LAMBDA_RUNTIME_API=runtime_api.address)
    try:
        path, _, payload = runtime_api.posts.get(timeout=15)
        assert path == "/2018-06-01/runtime/invocation/req-1/response"
        assert payload["event"] == {"n": 1} and payload["id"] == "req-1"
        assert payload["arn"].endswith(":function:f")
        assert 55_000 < payload["remaining"] <= 60_000
        assert payload["trace"] == "Root=1-abc"
        assert (payload["client"], payload["identity"]) == ({"k": "v"}, "id-7")
        path, headers, payload = runtime_api.posts.get(timeout=15)
        assert path == "/2018-06-01/runtime/invocation/req-2/error"
        assert payload["errorType"] == "KeyError"
        assert payload["errorMessage"] == "'nope'"
        assert isinstance(payload["stackTrace"], list) and payload["stackTrace"]
        assert headers.get("Lambda-Runtime-Function-Error-Type") == "Unhandled"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_runtime_api_init_error(runtime_api: FakeRuntimeApi) -> None:
    proc = _container(
        FIXTURES / "broken", "handler", ENTRYPOINT="handler",
        AWS_LAMBDA_RUNTIME_API=runtime_api.address,
    )  # fmt: skip
    try:
        path, headers, payload = runtime_api.posts.get(timeout=15)
        assert proc.wait(timeout=10) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
    assert path == "/2018-06-01/runtime/init/error"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'handler'" in payload["errorMessage"]
    assert headers.get("Lambda-Runtime-Function-Error-Type") == "Runtime.ImportModuleError"


def test_local_emulator_endpoint(tmp_path: Path) -> None:
    (tmp_path / "handlers.py").write_text(
        "def handler(event, context):\n"
        "    if event.get('fail'):\n"
        "        raise ValueError('bad input')\n"
        "    return {'got': event, 'name': context.function_name,\n"
        "            'mem': context.memory_limit_in_mb}\n"
    )
    env = shim_env(
        tmp_path, HYBRIDLESS_EVENT_TYPE="lambdaContainer", ENTRYPOINT="handlers",
        ENTRYPOINT_FUNC="handler", AWS_LAMBDA_FUNCTION_NAME="test_function",
    )  # fmt: skip
    emulator = runner.start_shim(ARGV, env=env, cwd=tmp_path)
    path = "/2015-03-31/functions/function/invocations"
    try:
        status, headers, body = request(emulator.url, "POST", path, b'{"a": 1}')
        assert status == 200
        assert json.loads(body) == {"got": {"a": 1}, "name": "test_function", "mem": "3008"}
        assert "x-amz-function-error" not in headers
        status, _, body = request(emulator.url, "POST", path, b"")
        assert json.loads(body)["got"] == {}
        status, headers, body = request(emulator.url, "POST", path, b'{"fail": true}')
        error = json.loads(body)
        assert (status, headers.get("x-amz-function-error")) == (200, "Unhandled")
        assert (error["errorType"], error["errorMessage"]) == ("ValueError", "bad input")
        assert get(emulator.url, "/elsewhere")[0] == 404
    finally:
        emulator.stop()


# --- a real adapter end to end: a Starlette app through Mangum ---

# The newest Starlette that still supports Python 3.10, so every supported Python can run it.
ASGI_REQUIREMENTS = ["mangum==0.22.0", "starlette==1.7.0"]


@pytest.fixture(scope="module")
def asgi_deps() -> Path:
    """Mangum and Starlette installed with ``pip --target`` once into the test cache."""
    key = hashlib.sha256(" ".join([PYTHON, *ASGI_REQUIREMENTS]).encode()).hexdigest()[:12]
    target = cache_root() / f"python-asgi-{key}"
    if not (target / ".complete").exists():
        done = subprocess.run(
            [PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--target", str(target), *ASGI_REQUIREMENTS],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            unavailable("PyPI (mangum, starlette)", done.stderr[-2000:])
        (target / ".complete").write_text("ok\n")
    return target


@dataclass(frozen=True)
class AsgiShim:
    """A shim serving the Starlette app in one event format."""

    format: str
    shim: runner.Shim


@pytest.fixture(scope="module", params=["apigw-v1", "apigw-v2", "alb", "alb-multi"])
def asgi_shim(request: pytest.FixtureRequest, asgi_deps: Path) -> Iterator[AsgiShim]:
    app = FIXTURES / "asgi"
    env = shim_env(
        app, ENTRYPOINT="app", ENTRYPOINT_FUNC="handler", HYBRIDLESS_HTTP_FORMAT=request.param,
        HEALTH_ROUTE="/health", TIMEOUT="1000",
        PYTHONPATH=f"{SHIM_PATH}{os.pathsep}{asgi_deps}",
    )  # fmt: skip
    shim = runner.start_shim(ARGV, env=env, cwd=app)
    yield AsgiShim(request.param, shim)
    shim.stop()


def test_mangum_query_and_repeated_headers(asgi_shim: AsgiShim) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", asgi_shim.shim.port, timeout=10)
    conn.putrequest("GET", "/inspect?q=hello%20world&a=1&a=2")
    conn.putheader("X-Dup", "one")
    conn.putheader("X-Dup", "two")
    conn.putheader("Cookie", "a=1; b=2")
    conn.endheaders()
    response = conn.getresponse()
    seen = json.loads(response.read())
    conn.close()
    assert response.status == 200
    assert seen["path"] == "/inspect"
    assert seen["q"] == "hello world"
    assert seen["cookies"] == {"a": "1", "b": "2"}
    # What a Starlette app sees of repeats differs by format as it does on AWS: Mangum joins
    # v1's multiValueHeaders with ", ", v2 arrives joined with ",", ALB single-value mode
    # keeps the last header and the last query value.
    expected_dup = {"apigw-v1": ["one, two"], "apigw-v2": ["one,two"], "alb": ["two"],
                    "alb-multi": ["one", "two"]}[asgi_shim.format]  # fmt: skip
    assert seen["dup"] == expected_dup
    assert seen["a"] == (["2"] if asgi_shim.format == "alb" else ["1", "2"])


def test_mangum_binary_round_trip(asgi_shim: AsgiShim) -> None:
    payload = bytes(range(256)) * 4
    status, headers, body = request(
        asgi_shim.shim.url, "POST", "/binary", payload, Content_Type="application/octet-stream"
    )
    assert status == 200
    assert headers["content-type"] == "application/octet-stream"
    assert body == payload[::-1]


def test_mangum_cookies_status_errors_timeout_health(asgi_shim: AsgiShim) -> None:
    url = asgi_shim.shim.url
    status, _, body = request(url, "POST", "/created", b'{"x": 1}',
                                    Content_Type="application/json")  # fmt: skip
    assert (status, json.loads(body)) == (201, {"created": {"x": 1}})
    conn = http.client.HTTPConnection("127.0.0.1", asgi_shim.shim.port, timeout=10)
    conn.request("GET", "/cookies")
    response = conn.getresponse()
    response.read()
    cookies = response.headers.get_all("set-cookie") or []
    conn.close()
    # Every format returns both (Mangum varies the header's case in ALB single-value mode).
    assert sorted(c.split(";")[0] for c in cookies) == ["a=1", "b=2"], cookies
    assert get(url, "/boom")[0] == 500  # Starlette turns the exception into its own 500
    assert get(url, "/slow")[0] == 504
    assert get(url, "/health") == (200, b"Healthy!")
