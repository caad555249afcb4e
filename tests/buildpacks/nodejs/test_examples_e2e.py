"""The examples end to end: built by the CLI onto the Debian base (Node 18), loaded into Docker,
run, and talked to over HTTP or run to exit. Each example is built once per module and each
server container serves every assertion about it."""

from __future__ import annotations

import http.client
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.buildpacks.nodejs.conftest import ImageNodeCli
from tests.e2e.conftest import copy_example, run_json
from tests.infra.cli import CliRunner
from tests.infra.containers import RunningContainer, load_archive, run_to_exit, running
from tests.infra.images import BaseImage

if TYPE_CHECKING:
    import docker

pytestmark = pytest.mark.docker

FORMATS = ("apigw-v1", "apigw-v2", "alb", "alb-multi")
BINARY = bytes(range(256)) * 4  # every byte value: anything but base64 would mangle it
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Built:
    """An example built into Docker: its tag, its source copy and the build document."""

    tag: str
    app: Path
    doc: dict[str, Any]
    stderr: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nodejs-examples")


@pytest.fixture(scope="module")
def module_cli(workdir: Path) -> CliRunner:
    # The Debian base provides Node.js: these tests are about the shim and the examples'
    # dependencies on it, not about the node layer (test_runtime.py covers that).
    return ImageNodeCli(home=workdir / "home", cache=workdir / "cache")


def _build(cli: CliRunner, client: docker.DockerClient, base: BaseImage, workdir: Path,
           example: str) -> Iterator[Built]:
    app = copy_example(example, workdir / "src")
    archive = workdir / f"{example}.tar"
    tag = f"hybridless-e2e/{example}:test"
    result = cli("build", app, "--image", f"docker-archive:{archive}:{tag}", "--run-image",
                 base.ref, "--json")
    assert result.returncode == 0, result.stderr
    assert tag in load_archive(client, archive)
    archive.unlink()
    yield Built(tag, app, json.loads(result.stdout), result.stderr)
    client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def express(module_cli: CliRunner, docker_client: docker.DockerClient, debian_base: BaseImage,
            workdir: Path) -> Iterator[Built]:
    yield from _build(module_cli, docker_client, debian_base, workdir, "nodejs-express")


@pytest.fixture(scope="module")
def servers(express: Built, docker_client: docker.DockerClient
            ) -> Iterator[dict[str, RunningContainer]]:
    """One container per event format, all started before any is waited for."""
    started = {fmt: RunningContainer(docker_client, express.tag,
                                     env={"HYBRIDLESS_HTTP_FORMAT": fmt}).start()
               for fmt in FORMATS}
    try:
        for container in started.values():
            container.wait_http("/health", timeout=60)
        yield started
    finally:
        for container in started.values():
            container.remove()


def request(server: RunningContainer, method: str, path: str, *, body: bytes | None = None,
            headers: Sequence[tuple[str, str]] = ()) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One HTTP request with headers that may repeat; returns status, headers and body."""
    conn = http.client.HTTPConnection("127.0.0.1", server.host_port(), timeout=20)
    try:
        conn.putrequest(method, path)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.msg, response.read()
    finally:
        conn.close()


def get_json(server: RunningContainer, path: str, **kwargs: Any) -> Any:
    status, _, body = request(server, "GET", path, **kwargs)
    assert status == 200, body
    return json.loads(body)


@pytest.mark.parametrize("fmt", FORMATS)
def test_query_strings(servers: dict[str, RunningContainer], fmt: str) -> None:
    got = get_json(servers[fmt], "/hello?a=1&a=2&b=x%20y&empty=")
    # ALB without multi-value mode passes only the last value of a repeated parameter.
    a = "2" if fmt == "alb" else ["1", "2"]
    assert got == {"method": "GET", "path": "/hello", "query": {"a": a, "b": "x y", "empty": ""}}


@pytest.mark.parametrize(("fmt", "seen"), [
    # What each integration hands Lambda for a repeated header, and so what the app sees.
    ("apigw-v1", "two"), ("apigw-v2", "one,two"), ("alb", "two"), ("alb-multi", "one, two")])
def test_repeated_headers(servers: dict[str, RunningContainer], fmt: str, seen: str) -> None:
    got = get_json(servers[fmt], "/headers",
                   headers=[("X-Multi", "one"), ("X-Multi", "two"), ("X-Single", "s")])
    assert got == {"multi": seen, "single": "s"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_cookies_both_ways(servers: dict[str, RunningContainer], fmt: str) -> None:
    status, headers, body = request(servers[fmt], "GET", "/cookies",
                                    headers=[("Cookie", "a=1; b=2")])
    assert status == 200 and json.loads(body) == {"received": "a=1; b=2"}
    cookies = headers.get_all("Set-Cookie") or []
    if fmt == "alb":
        # Single-value ALB responses cannot carry two values of one header; serverless-http
        # leaves Set-Cookie out rather than send half of them.
        assert cookies == []
    else:
        assert cookies == ["session=abc; Path=/; HttpOnly", "theme=dark; Path=/"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_binary_request_and_response_bodies(servers: dict[str, RunningContainer],
                                            fmt: str) -> None:
    status, headers, body = request(servers[fmt], "POST", "/echo", body=BINARY,
                                    headers=[("Content-Type", "application/octet-stream")])
    assert status == 200 and body == BINARY
    assert headers["Content-Type"] == "application/octet-stream"
    status, headers, body = request(servers[fmt], "GET", "/pixel")
    assert status == 200 and body.startswith(PNG_MAGIC) and headers["Content-Type"] == "image/png"


@pytest.mark.parametrize("fmt", FORMATS)
def test_errors_statuses_and_health(servers: dict[str, RunningContainer], fmt: str) -> None:
    status, headers, body = request(servers[fmt], "GET", "/crash")
    assert status == 502
    if fmt.startswith("alb"):
        # The load balancer's own HTML error page (docs/events.md), not API Gateway's JSON.
        assert headers["Content-Type"].startswith("text/html") and b"502 Bad Gateway" in body
    else:
        assert headers["Content-Type"].startswith("application/json")
        assert json.loads(body) == {"message": "Internal server error"}
    status, _, body = request(servers[fmt], "GET", "/teapot")
    assert status == 418 and json.loads(body) == {"error": "I'm a teapot"}
    status, _, body = request(servers[fmt], "GET", "/health")
    assert (status, body) == (200, b"Healthy!")
    assert "crashed on purpose" in servers[fmt].logs()


def test_timeouts_answer_504_in_every_format(servers: dict[str, RunningContainer]) -> None:
    # The function's timeout is 2 s and /slow takes 5 s; all formats wait in parallel.
    with ThreadPoolExecutor(len(FORMATS)) as pool:
        statuses = dict(zip(FORMATS, pool.map(
            lambda fmt: request(servers[fmt], "GET", "/slow")[0], FORMATS), strict=True))
    assert statuses == dict.fromkeys(FORMATS, 504)
    # The server is still serving after abandoning the invocation.
    assert get_json(servers["apigw-v1"], "/hello")["path"] == "/hello"


def test_express_image_runs_as_non_root_with_dependencies_in_their_layer(
        express: Built, docker_client: docker.DockerClient) -> None:
    names = [layer["name"] for layer in express.doc["layers"]]
    assert {"hybridless/nodejs/deps", "hybridless/nodejs/shim"} <= set(names)
    finished = run_to_exit(docker_client, express.tag, entrypoint=["/bin/sh", "-c",
                           "id -u; readlink /var/task/node_modules; "
                           "ls /var/task/node_modules/express/package.json"])
    assert finished.exit_code == 0, finished.stderr
    assert finished.stdout.split() == ["1000", "/layers/hybridless_nodejs/deps/node_modules",
                                       "/var/task/node_modules/express/package.json"]


def test_dependency_reuse_survives_deleted_files_and_a_broken_npm(
        express: Built, module_cli: CliRunner, debian_base: BaseImage, tmp_path: Path) -> None:
    first = run_json(module_cli, "build", express.app, "--image", f"oci:{tmp_path}/one:x",
                     "--run-image", debian_base.ref)
    layers_dir = next((module_cli.cache / "hybridless" / "projects").glob(
        "*/layers/hybridless_nodejs"))
    record = layers_dir / "deps.json"
    assert record.is_file()
    shutil.rmtree(layers_dir / "deps", ignore_errors=True)
    broken = tmp_path / "bin"
    broken.mkdir()
    (broken / "npm").write_text("#!/bin/sh\necho 'npm must not run' >&2\nexit 9\n")
    (broken / "npm").chmod(0o755)
    env = {"PATH": f"{broken}{os.pathsep}{os.environ['PATH']}"}
    second = run_json(module_cli, "build", express.app, "--image", f"oci:{tmp_path}/two:x",
                      "--run-image", debian_base.ref, env=env)
    assert second["digest"] == first["digest"]
    deps = [layer for layer in second["layers"] if layer["name"] == "hybridless/nodejs/deps"]
    assert deps[0]["reused"] and deps[0]["digest"] == next(
        layer["digest"] for layer in express.doc["layers"] if layer["name"] == deps[0]["name"])
    # Control: with a dependency change, that npm is the one called, and the build fails.
    package = json.loads((express.app / "package.json").read_text())
    package["dependencies"]["ms"] = "2.1.3"
    (express.app / "package.json").write_text(json.dumps(package))
    try:
        failed = module_cli("build", express.app, "--image", f"oci:{tmp_path}/three:x",
                            "--run-image", debian_base.ref, env=env)
        assert failed.returncode == 50 and "npm must not run" in failed.stderr
    finally:
        shutil.copyfile(Path(__file__).parents[3] / "examples/nodejs-express/package.json",
                        express.app / "package.json")


@pytest.fixture(scope="module")
def plain(module_cli: CliRunner, docker_client: docker.DockerClient, debian_base: BaseImage,
          workdir: Path) -> Iterator[Built]:
    yield from _build(module_cli, docker_client, debian_base, workdir, "nodejs-handler")


def test_plain_handler_is_inferred_and_served(plain: Built,
                                              docker_client: docker.DockerClient) -> None:
    assert "inferred function 'main': httpd handler.handler" in plain.stderr
    assert [p["name"] for p in plain.doc["processes"]] == ["main"]
    with running(docker_client, plain.tag, wait_path="/") as server:
        got = get_json(server, "/hi?name=you")
    assert got["message"] == "hello, you" and got["path"] == "/hi"
    assert got["functionName"] == "main" and len(got["requestId"]) == 36


@pytest.fixture(scope="module")
def lambda_container(module_cli: CliRunner, docker_client: docker.DockerClient,
                     debian_base: BaseImage, workdir: Path) -> Iterator[Built]:
    yield from _build(module_cli, docker_client, debian_base, workdir, "nodejs-lambda-container")


def test_lambda_container_answers_through_the_emulator_endpoint(
        lambda_container: Built, docker_client: docker.DockerClient) -> None:
    invoke = "/2015-03-31/functions/function/invocations"
    assert not (lambda_container.app / "dist").exists()  # built in a copy, not in the source
    with running(docker_client, lambda_container.tag, wait_path=None) as server:
        server.wait_http(invoke, timeout=60)
        status, headers, body = request(server, "POST", invoke, body=b'{"name":"you"}')
        assert status == 200 and headers["X-Amz-Function-Error"] is None
        assert json.loads(body) == {"greeting": "hello, you", "builtBy": "npm run build",
                                    "functionName": "fn", "remainingMs": True}
        status, headers, body = request(server, "POST", invoke, body=b'{"fail":true}')
        assert status == 200 and headers["X-Amz-Function-Error"] == "Unhandled"
        error = json.loads(body)
        assert error["errorType"] == "TypeError" and error["errorMessage"] == "failed on purpose"


@pytest.fixture(scope="module")
def tasks(module_cli: CliRunner, docker_client: docker.DockerClient, debian_base: BaseImage,
          workdir: Path) -> Iterator[Built]:
    yield from _build(module_cli, docker_client, debian_base, workdir, "nodejs-scheduled-task")


@pytest.mark.parametrize(("process", "args", "code", "last"), [
    ("nightly", [], 0, {"processed": "nightly-report"}),
    ("nightly", ['{"job":"adhoc"}'], 0, {"processed": "adhoc"}),
    ("nightly", ['{"job":"x","fail":true}'], 1, None),
    ("on-demand", ['{"statusCode":200}'], 0, None),
    ("on-demand", ['{"statusCode":404}'], 2, None),
    ("on-demand", ['{"throw":true}'], 1, None),
    ("on-demand", ["not json"], 64, None),
])
def test_task_types_exit_with_the_contract_codes(tasks: Built,
                                                 docker_client: docker.DockerClient,
                                                 process: str, args: list[str], code: int,
                                                 last: Any) -> None:
    finished = run_to_exit(docker_client, tasks.tag, args,
                           env={"HYBRIDLESS_PROCESS": process}, timeout=60)
    assert finished.exit_code == code, (finished.stdout, finished.stderr)
    if last is not None:
        assert json.loads(finished.last_line) == last
