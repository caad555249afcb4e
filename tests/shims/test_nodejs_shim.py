"""The Node.js shim's own behaviour, run as a real `node` process (the shared part: test_both.py).

Set HYBRIDLESS_TEST_NODE to a node binary to run everything on another Node release.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import queue
import re
import shutil
import subprocess
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
SHIM = REPO / "buildpacks" / "nodejs" / "shim" / "index.mjs"
FIXTURES = Path(__file__).resolve().parent / "node_fixtures"
NODE = os.environ.get("HYBRIDLESS_TEST_NODE", "node")
ARGV = [NODE, str(SHIM)]


def shim_env(app: Path, **extra: str) -> dict[str, str]:
    """Environment for a shim serving an app directory; extra overrides it."""
    return {"LAMBDA_TASK_ROOT": str(app), "HYBRIDLESS_EVENT_TYPE": "httpd", **extra}


def run_task(app: Path, func: str, event_type: str, *args: str, **env: str) -> tuple[int, str, str]:
    """Run a task event type to completion; return (exit code, stdout, stderr)."""
    full_env = {
        **os.environ,
        **shim_env(app, HYBRIDLESS_EVENT_TYPE=event_type, ENTRYPOINT="task", ENTRYPOINT_FUNC=func),
        **env,
    }
    done = subprocess.run(
        [*ARGV, *args], cwd=app, env=full_env, capture_output=True, text=True, timeout=20
    )
    return done.returncode, done.stdout, done.stderr


def last_line(stdout: str) -> Any:
    """The task contract's result: the last stdout line, parsed as JSON."""
    return json.loads(stdout.strip().splitlines()[-1])


# --- task event types (CONTRACT §4) ---

TASKS = FIXTURES / "tasks"


def test_launchable_without_argument_gets_empty_event() -> None:
    code, out, _ = run_task(TASKS, "echo", "launchableTask")
    assert (code, last_line(out)) == (0, {})


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        ("callbackStyle", {"statusCode": 200, "via": "callback"}),
        ("syncReturn", {"statusCode": 200, "via": "sync"}),
        ("loopRunsDry", None),
    ],
)
def test_task_handler_styles(func: str, expected: Any) -> None:
    code, out, err = run_task(TASKS, func, "job", "{}")
    assert code == 0, err
    assert last_line(out) == expected



def test_scheduled_task_argument_that_is_not_json_is_a_string() -> None:
    # Node passes a plain-text argument on as a string; the Python shim refuses it with 64.
    code, out, _ = run_task(TASKS, "echo", "scheduledTask", "plain text input")
    assert (code, last_line(out)) == (0, "plain text input")

# --- loading the handler ---


@pytest.mark.parametrize(
    ("entrypoint", "func", "error_type"),
    [
        ("syntax", "handler", "Runtime.UserCodeSyntaxError"),
        ("throws-at-import", "handler", "Runtime.ImportModuleError"),
        ("no-export", "handler", "Runtime.HandlerNotFound"),
    ],
)
def test_load_error_fails_fast(entrypoint: str, func: str, error_type: str) -> None:
    app = FIXTURES / "broken"
    env = {**os.environ, **shim_env(app, ENTRYPOINT=entrypoint, ENTRYPOINT_FUNC=func)}
    started = time.monotonic()
    done = subprocess.run(ARGV, cwd=app, env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode != 0
    assert time.monotonic() - started < 5
    assert f"failed to load handler {entrypoint}.{func}" in done.stderr
    assert error_type in done.stderr


@pytest.mark.parametrize(
    ("entrypoint", "body"),
    [("common", b"cjs /x"), ("cjs-pkg/handler", b"js-cjs"), ("dir-index", b"dir-index")],
)
def test_module_kinds_load(entrypoint: str, body: bytes) -> None:
    app = FIXTURES / "httpd"
    shim = runner.start_shim(ARGV, env=shim_env(app, ENTRYPOINT=entrypoint), cwd=app)
    try:
        assert runner.get(shim.url, "/x") == (200, body)
    finally:
        shim.stop()


# --- httpd behaviour beyond the corpus ---

HTTPD = FIXTURES / "httpd"


@pytest.fixture
def slow_shim(request: pytest.FixtureRequest) -> Iterator[runner.Shim]:
    extra = getattr(request, "param", {})
    env = shim_env(HTTPD, ENTRYPOINT="app", ENTRYPOINT_FUNC="slow", **extra)
    shim = runner.start_shim(ARGV, env=env, cwd=HTTPD)
    yield shim
    shim.stop()


@pytest.mark.parametrize("slow_shim", [{"TIMEOUT": "400"}], indirect=True)
def test_each_request_times_out_on_its_own_clock(slow_shim: runner.Shim) -> None:
    # Staggered slow requests around a fast one: every slow one gets its 504 about TIMEOUT
    # after it started, not when an earlier one's timer happens to fire.
    def timed(path: str, delay: float) -> tuple[int, float]:
        time.sleep(delay)
        started = time.monotonic()
        status, _ = runner.get(slow_shim.url, path)
        return status, time.monotonic() - started

    plan = [("/slow?ms=3000", 0.0), ("/slow?ms=50", 0.1), ("/slow?ms=3000", 0.25)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda p: timed(*p), plan))
    assert [status for status, _ in results] == [504, 200, 504]
    for status, elapsed in results:
        if status == 504:
            assert 0.35 <= elapsed < 1.2, f"504 after {elapsed:.2f}s for TIMEOUT=400"


UUID_V4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_request_ids_stay_distinct_v4_uuids_across_pool_refills() -> None:
    env = shim_env(HTTPD, ENTRYPOINT="app", ENTRYPOINT_FUNC="ids")
    shim = runner.start_shim(ARGV, env=env, cwd=HTTPD)
    seen: set[str] = set()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", shim.port, timeout=5)
        # The shim formats ids a pool of 256 at a time: cross a few refills.
        for _ in range(600):
            conn.request("GET", "/id")
            answer = json.loads(conn.getresponse().read())
            assert UUID_V4.match(answer["requestId"]), answer["requestId"]
            assert answer["awsRequestId"] == answer["requestId"]
            seen.add(answer["requestId"])
        conn.close()
    finally:
        shim.stop()
    assert len(seen) == 600


def test_header_names_map_the_same_beyond_the_name_cache() -> None:
    env = shim_env(HTTPD, ENTRYPOINT="app", ENTRYPOINT_FUNC="ids")
    shim = runner.start_shim(ARGV, env=env, cwd=HTTPD)

    def send(conn: http.client.HTTPConnection, headers: list[tuple[str, str]]) -> Any:
        conn.putrequest("GET", "/names")
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        return json.loads(conn.getresponse().read())

    try:
        conn = http.client.HTTPConnection("127.0.0.1", shim.port, timeout=5)
        # More distinct names than the shim caches (1024) over two requests (node takes about
        # a thousand headers per request), then names it never cached.
        first = send(conn, [(f"h{n}", str(n)) for n in range(1000)])
        second = send(conn, [(f"h{n}", str(n)) for n in range(1000, 1100)])
        late = send(conn, [("Late-Name", "1"), ("late-NAME", "2"), ("h7", "x")])
        conn.close()
    finally:
        shim.stop()
    assert all(first["headers"][f"h{n}"] == str(n) for n in range(1000))
    assert all(second["multiValueHeaders"][f"h{n}"] == [str(n)] for n in range(1000, 1100))
    # REST v1 groups names case-insensitively under the first spelling.
    assert late["headers"]["Late-Name"] == "2" and "late-NAME" not in late["headers"]
    assert late["multiValueHeaders"]["Late-Name"] == ["1", "2"]
    assert late["headers"]["h7"] == "x"


def test_header_node_refuses_is_a_502_with_its_own_reason() -> None:
    env = shim_env(HTTPD, ENTRYPOINT="app", ENTRYPOINT_FUNC="badHeaderName")
    shim = runner.start_shim(ARGV, env=env, cwd=HTTPD)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", shim.port, timeout=5)
        conn.request("GET", "/bad")
        answer = conn.getresponse()
        body = answer.read()
        conn.close()
    finally:
        shim.stop()
    assert (answer.status, answer.reason) == (502, "Bad Gateway")
    assert json.loads(body) == {"message": "Internal server error"}


# --- lambdaContainer: the Runtime API client and the local emulator ---


@dataclass
class FakeRuntimeApi:
    """A minimal Lambda Runtime API: hands out queued events and records what comes back."""

    events: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    posts: queue.Queue[tuple[str, dict[str, str], bytes]] = field(default_factory=queue.Queue)
    server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                assert self.path == "/2018-06-01/runtime/invocation/next"
                try:
                    request_id, body = api.events.get(timeout=10)
                except queue.Empty:
                    self.send_error(500)
                    return
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 3000))
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:eu-west-1:123456789012:function:fake",
                )
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-abc")
                # Always sent, possibly empty, as Lambda does.
                self.send_header("Lambda-Runtime-Client-Context", '{"custom": {"k": "v"}}')
                self.send_header("Lambda-Runtime-Cognito-Identity", "")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                api.posts.put((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def runtime_api() -> Iterator[FakeRuntimeApi]:
    api = FakeRuntimeApi()
    yield api
    api.stop()


def start_container(app: Path, entrypoint: str, func: str, **env: str) -> subprocess.Popen[str]:
    full_env = {
        **os.environ,
        **shim_env(
            app,
            HYBRIDLESS_EVENT_TYPE="lambdaContainer",
            ENTRYPOINT=entrypoint,
            ENTRYPOINT_FUNC=func,
        ),
        **env,
    }
    return subprocess.Popen(
        ARGV, cwd=app, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_runtime_api_success_and_error(runtime_api: FakeRuntimeApi) -> None:
    host = runtime_api.start()
    runtime_api.events.put(("req-1", b'{"order": 1}'))
    runtime_api.events.put(("req-2", b'{"order": 2}'))
    process = start_container(
        FIXTURES / "runtime", "runtime", "handler", AWS_LAMBDA_RUNTIME_API=host
    )
    try:
        path, _, body = runtime_api.posts.get(timeout=10)
        assert path == "/2018-06-01/runtime/invocation/req-1/response"
        result = json.loads(body)
        assert result["event"] == {"order": 1}
        assert result["requestId"] == "req-1"
        assert result["arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:fake"
        assert 1000 < result["remaining"] <= 3000
        assert result["clientContext"] == {"custom": {"k": "v"}}
        assert result["traceId"] == "Root=1-abc"
        path, headers, body = runtime_api.posts.get(timeout=10)
        assert path == "/2018-06-01/runtime/invocation/req-2/error"
        error = json.loads(body)
        assert error["errorType"] == "RangeError"
        assert error["errorMessage"] == "order 2 is out of range"
        assert error["trace"][0].startswith("RangeError: order 2 is out of range")
        assert error["stackTrace"] == error["trace"]
        assert headers["lambda-runtime-function-error-type"] == "RangeError"
        assert process.poll() is None, "the client loop must keep polling"
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_runtime_api_init_error(runtime_api: FakeRuntimeApi) -> None:
    host = runtime_api.start()
    process = start_container(
        FIXTURES / "broken", "no-export", "handler", AWS_LAMBDA_RUNTIME_API=host
    )
    assert process.wait(timeout=10) != 0
    path, headers, body = runtime_api.posts.get(timeout=1)
    assert path == "/2018-06-01/runtime/init/error"
    error = json.loads(body)
    assert error["errorType"] == "Runtime.HandlerNotFound"
    assert "no-export.handler is undefined or not exported" in error["errorMessage"]
    assert headers["lambda-runtime-function-error-type"] == "Runtime.HandlerNotFound"


def test_runtime_api_handler_string_from_cmd(runtime_api: FakeRuntimeApi) -> None:
    # On Lambda the image CMD (or its override) names the handler.
    host = runtime_api.start()
    runtime_api.events.put(("req-9", b"{}"))
    env = {
        **os.environ,
        "LAMBDA_TASK_ROOT": str(FIXTURES / "runtime"),
        "HYBRIDLESS_EVENT_TYPE": "lambdaContainer",
        "AWS_LAMBDA_RUNTIME_API": host,
    }
    env.pop("ENTRYPOINT", None)
    process = subprocess.Popen(
        [*ARGV, "runtime.handler"],
        cwd=FIXTURES / "runtime",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        path, _, _ = runtime_api.posts.get(timeout=10)
        assert path == "/2018-06-01/runtime/invocation/req-9/response"
    finally:
        process.terminate()
        process.wait(timeout=5)


def post(url: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", path, body=body)
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        conn.close()


def test_local_emulator_endpoint() -> None:
    env = shim_env(
        FIXTURES / "runtime",
        HYBRIDLESS_EVENT_TYPE="lambdaContainer",
        ENTRYPOINT="runtime",
        ENTRYPOINT_FUNC="handler",
        AWS_LAMBDA_FUNCTION_TIMEOUT="1",
    )
    env.pop("AWS_LAMBDA_RUNTIME_API", None)
    shim = runner.start_shim(ARGV, env=env, cwd=FIXTURES / "runtime")
    invocations = "/2015-03-31/functions/function/invocations"
    try:
        status, headers, body = post(shim.url, invocations, b'{"order": 1}')
        assert status == 200 and "x-amz-function-error" not in headers
        result = json.loads(body)
        assert result["event"] == {"order": 1}
        assert result["functionName"] == "test_function"
        assert result["memory"] == "3008"
        status, headers, body = post(shim.url, invocations, b'{"order": 2}')
        assert (status, headers["x-amz-function-error"]) == (200, "Unhandled")
        assert json.loads(body)["errorType"] == "RangeError"
        status, headers, body = post(shim.url, invocations, b'{"sleep": 3000}')
        assert headers["x-amz-function-error"] == "Unhandled"
        assert json.loads(body)["errorType"] == "Sandbox.Timedout"
        assert post(shim.url, invocations, b"{nope")[0] == 400
        assert post(shim.url, "/other", b"{}")[0] == 404
    finally:
        shim.stop()


# --- a real adapter end to end: Express through serverless-http ---


@pytest.fixture(scope="module")
def express_app() -> Path:
    """The express fixture with its node_modules, installed once per lockfile into the cache."""
    source = FIXTURES / "express"
    lock = (source / "package-lock.json").read_bytes()
    key = hashlib.sha256(lock + (source / "package.json").read_bytes()).hexdigest()[:16]
    target = cache_root() / f"node-express-{key}"
    shutil.copytree(source, target, dirs_exist_ok=True)  # app.js edits apply without reinstall
    if not (target / "node_modules" / ".package-lock.json").exists():
        npm = shutil.which("npm")
        if npm is None:
            unavailable("npm", "not on PATH")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            unavailable("the npm registry", done.stderr[-2000:])
    return target


@dataclass(frozen=True)
class ExpressShim:
    """A shim serving the Express app in one event format."""

    format: str
    url: str
    port: int


@pytest.fixture(scope="module", params=["apigw-v1", "apigw-v2", "alb", "alb-multi"])
def express_shim(request: pytest.FixtureRequest, express_app: Path) -> Iterator[ExpressShim]:
    env = shim_env(
        express_app,
        ENTRYPOINT="app",
        ENTRYPOINT_FUNC="handler",
        HYBRIDLESS_HTTP_FORMAT=request.param,
        HEALTH_ROUTE="/health",
        TIMEOUT="2000",
    )
    shim = runner.start_shim(ARGV, env=env, cwd=express_app)
    yield ExpressShim(request.param, shim.url, shim.port)
    shim.stop()


# What an Express app sees of repeated headers and query keys, and which Set-Cookie headers
# survive, differ by format exactly as they do on AWS: REST v1 and ALB single-value mode keep
# the last value of a repeated header, ALB single-value mode also of a query key, and cannot
# return more than one value per response header.
EXPRESS_VIEW = {
    "apigw-v1": {"dup": "two", "a": ["1", "2"], "cookies": ["a=1", "b=2"]},
    "apigw-v2": {"dup": "one,two", "a": ["1", "2"], "cookies": ["a=1", "b=2"]},
    "alb": {"dup": "two", "a": "2", "cookies": []},
    "alb-multi": {"dup": "one, two", "a": ["1", "2"], "cookies": ["a=1", "b=2"]},
}


def test_express_query_headers_cookies(express_shim: ExpressShim) -> None:
    host, port = express_shim.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("GET", "/hello/world?a=1&a=2&q=hello%20there")
    conn.putheader("X-Dup", "one")
    conn.putheader("X-Dup", "two")
    conn.putheader("Cookie", "s=abc; t=def")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 200
    body = json.loads(response.read())
    conn.close()
    assert body["name"] == "world"
    assert body["path"] == "/hello/world"
    assert body["query"] == {"a": EXPRESS_VIEW[express_shim.format]["a"], "q": "hello there"}
    view = EXPRESS_VIEW[express_shim.format]
    assert body["dup"] == view["dup"]
    assert body["cookie"] == "s=abc; t=def"


def test_express_binary_round_trip(express_shim: ExpressShim) -> None:
    payload = bytes(range(256)) * 4
    host, port = express_shim.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(
        "POST", "/echo", body=payload, headers={"Content-Type": "application/octet-stream"}
    )
    response = conn.getresponse()
    assert response.status == 200
    assert response.read() == payload
    conn.request("GET", "/png")
    response = conn.getresponse()
    assert response.getheader("content-type") == "image/png"
    assert response.read() == bytes([0x89, 0x50, 0x4E, 0x47, 0x00, 0xFF, 0x10])
    conn.close()


def test_express_set_cookie_status_and_health(express_shim: ExpressShim) -> None:
    host, port = express_shim.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/cookies")
    response = conn.getresponse()
    assert response.read() == b"cookies set"
    cookies = [v for k, v in response.getheaders() if k.lower() == "set-cookie"]
    assert [c.split(";")[0] for c in cookies] == EXPRESS_VIEW[express_shim.format]["cookies"]
    conn.request("GET", "/status/418")
    response = conn.getresponse()
    assert (response.status, response.read()) == (418, b"status 418")
    conn.request("GET", "/health")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"Healthy!")
    conn.close()
