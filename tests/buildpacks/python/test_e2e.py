"""The Python examples end to end: built by the CLI, loaded into Docker, run, talked to.

Each example is built once for the module into a docker-archive on the Debian base (Python
3.11), loaded, and its long-lived containers are shared by the tests that talk to them.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from lifecycle.functions import health_route
from tests.buildpacks.python.conftest import runner
from tests.e2e.conftest import copy_example, run_json
from tests.infra.containers import RunningContainer, load_archive, run_to_exit
from tests.infra.images import BaseImage

if TYPE_CHECKING:
    import docker

MANGUM_ID = "dev.hybridless.examples.python-mangum"
# The Mangum example's processes, one per event format.
FORMATS = ("api", "api-v2", "api-alb")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, debian_base: BaseImage,
           docker_client: docker.DockerClient) -> Iterator[dict[str, str]]:
    """Every Python example built and loaded: example name → image tag."""
    root = tmp_path_factory.mktemp("py-e2e")
    cli = runner(root)
    loaded: dict[str, str] = {}
    for example in ("python-hello", "python-mangum", "python-task", "python-lambda"):
        app = copy_example(example, root / "src")
        archive = root / f"{example}.tar"
        # A tag per run: two test runs on one engine must not remove each other's images.
        tag = f"hybridless-tests/{example}:e2e-{os.getpid()}"
        run_json(cli, "build", app, "--image", f"docker-archive:{archive}:{tag}",
                 "--run-image", debian_base.ref)
        load_archive(docker_client, archive)
        loaded[example] = tag
    yield loaded
    for tag in loaded.values():
        docker_client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def mangum(images: dict[str, str], docker_client: docker.DockerClient
           ) -> Iterator[dict[str, RunningContainer]]:
    """One running container per event format of the Mangum example, by process name."""
    started: dict[str, RunningContainer] = {}
    try:
        for process in FORMATS:
            started[process] = RunningContainer(docker_client, images["python-mangum"],
                                                env={"HYBRIDLESS_PROCESS": process}).start()
        for process, container in started.items():
            container.wait_http(health_route(MANGUM_ID, process), statuses=(200,))
        yield started
    finally:
        for container in started.values():
            container.remove()


def repeated(process: str, values: list[str]) -> list[str]:
    """What the app sees of a repeated query key or header: an ALB without multi-value mode
    passes only the last value (REFERENCE §2); the API Gateway formats keep them all."""
    return values[-1:] if process == "api-alb" else values


class Reply:
    """An HTTP response read whole: status, repeated headers kept, body bytes."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.body = response.read()

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def values(self, name: str) -> list[str]:
        """Every value of a header, whether sent repeated or comma-joined."""
        return [part.strip() for value in self.headers.get_all(name) or ()
                for part in value.split(",")]


def request(container: RunningContainer, method: str, path: str,
            headers: Sequence[tuple[str, str]] = (), body: bytes | None = None,
            timeout: float = 10) -> Reply:
    """One request on a fresh connection; header pairs may repeat a name."""
    conn = http.client.HTTPConnection("127.0.0.1", container.host_port(), timeout=timeout)
    try:
        conn.putrequest(method, path)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        return Reply(conn.getresponse())
    finally:
        conn.close()


@pytest.mark.parametrize("process", FORMATS)
def test_mangum_reads_query_strings(mangum: dict[str, RunningContainer], process: str) -> None:
    reply = request(mangum[process], "GET", "/hello?name=J%C3%BCrg%20K&tag=a&tag=b")
    assert reply.status == 200, reply.body
    assert reply.json() == {"name": "Jürg K", "tags": repeated(process, ["a", "b"]),
                            "path": "/hello"}


@pytest.mark.parametrize("process", FORMATS)
def test_mangum_sees_and_sends_repeated_headers(mangum: dict[str, RunningContainer],
                                                process: str) -> None:
    reply = request(mangum[process], "GET", "/headers", [("X-Multi", "a"), ("X-Multi", "b")])
    assert reply.status == 200, reply.body
    sent = [part.strip() for value in reply.json()["x-multi"] for part in value.split(",")]
    assert sent == repeated(process, ["a", "b"])
    assert reply.values("x-reply") == ["one", "two"]


@pytest.mark.parametrize("process", FORMATS)
def test_mangum_reads_and_sets_cookies(mangum: dict[str, RunningContainer],
                                       process: str) -> None:
    reply = request(mangum[process], "GET", "/cookies", [("Cookie", "a=1; b=two")])
    assert reply.status == 200, reply.body
    assert reply.json() == {"cookies": {"a": "1", "b": "two"}}
    # Each cookie must arrive as its own header: Set-Cookie values cannot be comma-joined.
    cookies = reply.headers.get_all("set-cookie") or []
    assert sorted(c.split(";")[0] for c in cookies) == ["session=abc123", "theme=dark"]


@pytest.mark.parametrize("process", FORMATS)
def test_mangum_round_trips_binary_bodies(mangum: dict[str, RunningContainer],
                                          process: str) -> None:
    payload = bytes(range(256)) * 4
    reply = request(mangum[process], "POST", "/binary",
                    [("Content-Type", "application/octet-stream")], payload)
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/octet-stream"
    assert reply.body == payload[::-1]


@pytest.mark.parametrize("process", FORMATS)
def test_app_errors_and_handler_errors(mangum: dict[str, RunningContainer],
                                       process: str) -> None:
    app_error = request(mangum[process], "GET", "/fail")
    assert (app_error.status, app_error.body) == (500, b"Internal Server Error")
    handler_error = request(mangum[process], "GET", "/crash")
    assert handler_error.status == 502
    if "alb" in process:
        # The load balancer's own HTML error page (docs/events.md), not API Gateway's JSON.
        assert b"502 Bad Gateway" in handler_error.body
    else:
        assert handler_error.json() == {"message": "Internal server error"}
    assert "the handler failed before reaching the app" in mangum[process].logs()


@pytest.mark.parametrize("process", FORMATS)
def test_a_slow_request_times_out_and_health_stays_up(mangum: dict[str, RunningContainer],
                                                      process: str) -> None:
    started = time.monotonic()
    slow = request(mangum[process], "GET", "/slow?seconds=6")
    elapsed = time.monotonic() - started
    assert slow.status == 504
    assert 1.9 <= elapsed < 4.5, f"the 2 s timeout answered after {elapsed:.2f}s"
    health = request(mangum[process], "GET", health_route(MANGUM_ID, process))
    assert (health.status, health.body) == (200, b"Healthy!")
    assert request(mangum[process], "GET", "/hello").status == 200


def test_the_plain_handler_answers_with_its_inferred_function(
        images: dict[str, str], docker_client: docker.DockerClient) -> None:
    container = RunningContainer(docker_client, images["python-hello"]).start()
    try:
        container.wait_http("/", statuses=(200,))
        reply = request(container, "GET", "/hi?name=you")
        assert reply.status == 200
        body = reply.json()
        assert (body["message"], body["path"], body["function"]) == ("hello, you", "/hi", "main")
        assert 0 < body["remaining_ms"] <= 30000
    finally:
        container.remove()


def test_the_lambda_container_answers_through_the_emulator(
        images: dict[str, str], docker_client: docker.DockerClient) -> None:
    invocations = "/2015-03-31/functions/function/invocations"
    container = RunningContainer(docker_client, images["python-lambda"]).start()
    try:
        # Any answer on the endpoint means it listens; GET is not an invocation.
        container.wait_http(invocations, statuses=range(200, 600))
        ok = request(container, "POST", invocations, body=b'{"numbers": [1, 2, 3.5]}')
        assert ok.status == 200
        result = ok.json()
        assert (result["sum"], result["function"], result["memory_mb"]) == (6.5, "sum", "512")
        assert len(result["request_id"]) == 36
        failed = request(container, "POST", invocations, body=b"{}")
        error = failed.json()
        assert (error["errorType"], error["errorMessage"]) == ("KeyError", "'numbers'")
    finally:
        container.remove()


@pytest.mark.parametrize(("process", "args", "code", "last_line"), [
    ("nightly", [], 0, None),
    ("nightly", ['{"job": "x", "fail": true}'], 1, None),
    ("worker", [], 0, None),
    ("launch", ['{"status": 200}'], 0, {"statusCode": 200, "body": '{"got": {"status": 200}}'}),
    ("launch", ['{"status": 404}'], 2, {"statusCode": 404, "body": '{"got": {"status": 404}}'}),
    ("launch", ['{"raise": true}'], 1, None),
    ("launch", ["not json"], 64, None),
    ("batch", ['{"status": 500}'], 2, None),
    ("batch", [], 0, {"statusCode": 200, "body": '{"got": {}}'}),
])
def test_task_types_exit_with_the_contract_codes(
        images: dict[str, str], docker_client: docker.DockerClient, process: str,
        args: list[str], code: int, last_line: dict[str, Any] | None) -> None:
    done = run_to_exit(docker_client, images["python-task"], args,
                       env={"HYBRIDLESS_PROCESS": process})
    assert done.exit_code == code, done.stdout + done.stderr
    if last_line is not None:
        assert json.loads(done.last_line) == last_line


def test_the_scheduled_task_uses_its_schedule_input_and_dependencies(
        images: dict[str, str], docker_client: docker.DockerClient) -> None:
    done = run_to_exit(docker_client, images["python-task"])
    assert done.exit_code == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[0])
    assert report["job"] == "nightly"
    assert report["next_run"].endswith("T02:00:00+00:00")


def test_the_image_runs_as_the_non_root_user_with_a_read_only_app(
        images: dict[str, str], docker_client: docker.DockerClient) -> None:
    check = "import os; print(os.getuid(), os.access('/var/task/app.py', os.W_OK))"
    done = run_to_exit(docker_client, images["python-mangum"], ["-c", check],
                       entrypoint=["python3"])
    uid, writable = done.stdout.split()[:2]
    assert (uid, writable) == ("1000", "False"), done.stderr
