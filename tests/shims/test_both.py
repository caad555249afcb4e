"""What both shims must do alike, written once and run against each: Node.js and Python.

The conformance corpus pins the events and responses; these tests pin the rest of the shared
behaviour (tasks, loading, settings, signals, concurrency, timeouts, keep-alive, body limits).
Each language's own file keeps what only that shim has. The handlers live side by side in
``twin_fixtures`` (``app.mjs``/``app.py``, ``task.mjs``/``task.py``), with the same names.
"""

from __future__ import annotations

import http.client
import json
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import runner
from tests.conformance.runner import ShimKind

FIXTURES = Path(__file__).resolve().parent / "twin_fixtures"
CASES = runner.load_cases()


@pytest.fixture(params=runner.SHIMS, ids=[s.name for s in runner.SHIMS])
def kind(request: pytest.FixtureRequest) -> ShimKind:
    """Each shim in turn."""
    return request.param  # type: ignore[no-any-return]


def run_task(
    kind: ShimKind, func: str, event_type: str, *args: str, **env: str
) -> tuple[int, str, str]:
    """Run a task event type to completion; return (exit code, stdout, stderr)."""
    done = kind.run(FIXTURES, *args, HYBRIDLESS_EVENT_TYPE=event_type, ENTRYPOINT="task",
                    ENTRYPOINT_FUNC=func, **env)  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def run_tasks(kind: ShimKind, *runs: tuple[Any, ...]) -> list[tuple[int, str, str]]:
    """Several run_task calls at once, each ``(func, event_type, *args, env)``."""
    # Start-up dominates a task's time, so they run side by side.
    with ThreadPoolExecutor(max_workers=len(runs)) as workers:
        return list(workers.map(lambda r: run_task(kind, *r[:-1], **r[-1]), runs))


def last_line(stdout: str) -> Any:
    """The task contract's result: the last stdout line, as JSON."""
    return json.loads(stdout.rstrip("\n").split("\n")[-1])


# --- the shared conformance corpus ---


@pytest.fixture(scope="module", params=runner.SHIMS, ids=[s.name for s in runner.SHIMS])
def pool(request: pytest.FixtureRequest) -> Iterator[runner.ShimPool]:
    with request.param.pool() as shims:
        yield shims


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_conformance(pool: runner.ShimPool, case: runner.Case) -> None:
    runner.check_case(pool.url_for(case), case)


# --- task event types (CONTRACT §4) ---


@pytest.mark.parametrize("event_type", ["launchableTask", "job"])
def test_launchable_exit_codes_and_result_line(kind: ShimKind, event_type: str) -> None:
    ok, no_status, not_found, boom, bad_json = run_tasks(
        kind,
        ("ok", event_type, '{"n": 1}', {}),
        ("no_status", event_type, "{}", {}),
        ("not_found", event_type, "{}", {}),
        ("boom", event_type, "{}", {}),
        ("ok", event_type, "{not json", {}),
    )
    assert (ok[0], last_line(ok[1])) == (0, {"statusCode": 200, "event": {"n": 1}})
    assert (no_status[0], last_line(no_status[1])) == (0, {"done": True})
    assert (not_found[0], last_line(not_found[1])) == (2, {"statusCode": 404, "body": "missing"})
    assert boom[0] == 1
    error = last_line(boom[1])
    assert (error["errorType"], error["errorMessage"]) == ("TaskError", "task exploded")
    assert "a line the handler printed" in boom[1]
    assert "task exploded" in boom[2] and "task." in boom[2], "the stack reaches the log"
    assert (bad_json[0], last_line(bad_json[1])["errorType"]) == (64, "InvalidEvent")


def test_scheduled_task_input_precedence_and_exit_codes(kind: ShimKind) -> None:
    env_input = {"HYBRIDLESS_SCHEDULE_INPUT": '{"from": "env"}'}
    from_argv, from_env, default, failed, not_found = run_tasks(
        kind,
        ("show", "scheduledTask", '{"from": "argv"}', env_input),
        ("show", "scheduledTask", env_input),
        ("show", "scheduledTask", {}),
        ("boom", "scheduledTask", {}),
        ("not_found", "scheduledTask", {}),
    )
    assert (from_argv[0], from_argv[2].count('EVENT {"from":"argv"}')) == (0, 1)
    assert (from_env[0], from_env[2].count('EVENT {"from":"env"}')) == (0, 1)
    assert (default[0], default[2].count("EVENT {}")) == (0, 1)
    assert failed[0] == 1 and "task exploded" in failed[2]
    # A non-200 status is not an error for a scheduled task: only launchable tasks check it.
    assert not_found[0] == 0


def test_process_exit_codes(kind: ShimKind) -> None:
    ok, boom = run_tasks(kind, ("ok", "process", {}), ("boom", "process", {}))
    assert (ok[0], boom[0]) == (0, 1)


def test_task_context_counts_down_from_timeout(kind: ShimKind) -> None:
    code, out, err = run_task(kind, "context", "job", "{}", TIMEOUT="10000", MEMORY="2048",
                              AWS_LAMBDA_FUNCTION_NAME="nightly")  # fmt: skip
    assert code == 0, err
    result = last_line(out)
    assert 9000 < result["first"] <= 10000
    assert 150 <= result["first"] - result["second"] <= 1000
    assert (result["name"], result["memory"]) == ("nightly", "2048")


# --- loading the handler, settings ---


@pytest.mark.parametrize(
    ("entrypoint", "func", "error_type"),
    [("missing", "sleepy", "Runtime.ImportModuleError"),
     ("app", "missing", "Runtime.HandlerNotFound")],
    ids=["no-module", "no-function"],
)  # fmt: skip
def test_load_error_fails_fast(kind: ShimKind, entrypoint: str, func: str, error_type: str) -> None:
    started = time.monotonic()
    done = kind.run(FIXTURES, ENTRYPOINT=entrypoint, ENTRYPOINT_FUNC=func)
    assert done.returncode == 1
    assert time.monotonic() - started < 5
    assert error_type in done.stderr


def test_invalid_setting_fails_fast(kind: ShimKind) -> None:
    done = kind.run(FIXTURES, ENTRYPOINT="app", ENTRYPOINT_FUNC="echo",
                    HYBRIDLESS_HTTP_FORMAT="apigw-v3")  # fmt: skip
    assert done.returncode != 0
    assert "HYBRIDLESS_HTTP_FORMAT must be one of" in done.stderr


# --- httpd behaviour beyond the corpus ---


@pytest.fixture
def shim(kind: ShimKind, request: pytest.FixtureRequest) -> Iterator[runner.Shim]:
    """An httpd shim on the twin app; parametrize indirectly with extra settings."""
    settings = {"ENTRYPOINT": "app", "ENTRYPOINT_FUNC": "sleepy", **getattr(request, "param", {})}
    running = kind.start(FIXTURES, **settings)
    yield running
    running.stop()


def test_sigterm_drains_in_flight_then_exits_zero(shim: runner.Shim) -> None:
    with ThreadPoolExecutor(max_workers=1) as workers:
        pending = workers.submit(_get_with_headers, shim.url, "/slow?ms=800")
        time.sleep(0.3)
        shim.process.send_signal(signal.SIGTERM)
        time.sleep(0.15)
        with pytest.raises(OSError):
            runner.get(shim.url, "/slow?ms=1", timeout=2)  # no longer accepting
        status, connection, body = pending.result(timeout=10)
    assert (status, connection, body) == (200, "close", b"slept")
    assert shim.process.wait(timeout=5) == 0
    assert "draining 1 in-flight request" in shim.output()


def _get_with_headers(url: str, path: str) -> tuple[int, str | None, bytes]:
    """GET on a fresh connection; return (status, Connection header, body)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("connection"), response.read()
    finally:
        conn.close()


def test_sigterm_when_idle_exits_zero_at_once(shim: runner.Shim) -> None:
    # An idle keep-alive connection must not hold the process open.
    conn = http.client.HTTPConnection("127.0.0.1", shim.port, timeout=5)
    conn.request("GET", "/slow?ms=1")
    conn.getresponse().read()
    started = time.monotonic()
    shim.process.send_signal(signal.SIGTERM)
    assert shim.process.wait(timeout=5) == 0
    assert time.monotonic() - started < 2
    conn.close()


def test_requests_run_concurrently(shim: runner.Shim) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as workers:
        results = list(workers.map(lambda _: runner.get(shim.url, "/slow?ms=500"), range(20)))
    elapsed = time.monotonic() - started
    assert all(status == 200 for status, _ in results)
    assert elapsed < 1.6, f"20 requests of 500 ms took {elapsed:.2f}s: they did not overlap"


@pytest.mark.parametrize(
    "shim", [{"ENTRYPOINT_FUNC": "counted", "HYBRIDLESS_CONCURRENCY": "2"}], indirect=True
)
def test_concurrency_limit_queues_excess(shim: runner.Shim) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=6) as workers:
        results = list(workers.map(lambda _: runner.get(shim.url, "/c?ms=300"), range(6)))
    elapsed = time.monotonic() - started
    assert all(status == 200 for status, _ in results)
    assert max(json.loads(body)["peak"] for _, body in results) == 2
    assert elapsed >= 0.85, "six 300 ms calls two at a time take three rounds"


@pytest.mark.parametrize(
    "shim", [{"ENTRYPOINT_FUNC": "remaining", "TIMEOUT": "5000"}], indirect=True
)
def test_remaining_time_counts_down(shim: runner.Shim) -> None:
    status, body = runner.get(shim.url, "/r")
    times = json.loads(body)
    assert status == 200
    assert 4500 < times["first"] <= 5000
    assert 150 <= times["first"] - times["second"] <= 1000


@pytest.mark.parametrize("shim", [{"ENTRYPOINT_FUNC": "echo"}], indirect=True)
def test_keep_alive_reuses_the_connection_and_outlasts_alb_idle(shim: runner.Shim) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", shim.port, timeout=5)
    conn.request("GET", "/a")
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    for i in range(3):
        conn.request("GET", f"/b{i}")
        again = conn.getresponse()
        assert json.loads(again.read())["path"] == f"/b{i}"
    assert conn.sock is sock, "the connection was not reused"
    keep_alive = first.getheader("keep-alive") or ""
    assert int(keep_alive.split("timeout=")[1].split(",")[0]) > 60
    conn.close()


@pytest.mark.parametrize(
    "shim", [{"ENTRYPOINT_FUNC": "big", "HYBRIDLESS_BODY_LIMIT": "1000"}], indirect=True
)
def test_chunked_bodies_up_to_the_limit_and_413_beyond(shim: runner.Shim) -> None:
    def post(chunks: list[bytes]) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", shim.port, timeout=5)
        try:
            conn.request("POST", "/u", body=iter(chunks), headers={"Content-Type": "text/plain"},
                         encode_chunked=True)  # fmt: skip
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    assert post([b"x" * 400, b"y" * 500]) == (200, b"900")
    status, body = post([b"x" * 600, b"y" * 600])
    assert (status, json.loads(body)) == (413, {"message": "Request Entity Too Large"})
