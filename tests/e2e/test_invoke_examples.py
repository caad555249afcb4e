"""``invoke`` and ``run`` of the examples, built on the Debian test base (heavy: ``-m debian``).

Each example is built into a docker-archive that the engine loads (as the examples' own e2e
tests do: a Debian image can take longer than the SDK's read timeout to stream under load),
and invoked as ``docker-daemon:``; test_publish.py covers ``run`` loading a store image
itself. A ``lambdaContainer`` answers through our Runtime API server
and the image's own client; task types answer with the task codes of CONTRACT §4.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.buildpacks.nodejs.conftest import ImageNodeCli
from tests.e2e.conftest import copy_example, run_json
from tests.infra.cli import CliRunner
from tests.infra.containers import load_archive
from tests.infra.images import BaseImage

if TYPE_CHECKING:
    import docker

EXAMPLES = ("python-lambda", "python-task", "nodejs-lambda-container", "nodejs-scheduled-task")


@pytest.fixture(scope="module")
def module_cli(tmp_path_factory: pytest.TempPathFactory) -> CliRunner:
    # The Debian base provides Node.js (as in the Node.js examples' own e2e tests).
    root = tmp_path_factory.mktemp("invoke-examples")
    return ImageNodeCli(home=root / "home", cache=root / "cache")


@pytest.fixture(scope="module")
def built(module_cli: CliRunner, debian_base: BaseImage, docker_client: docker.DockerClient,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Each example loaded into the engine: example → ``docker-daemon:`` reference."""
    src = tmp_path_factory.mktemp("invoke-src")
    refs: dict[str, str] = {}
    suffix = f"{os.getpid()}-{secrets.token_hex(2)}"
    for example in EXAMPLES:
        app = copy_example(example, src)
        tag = f"hybridless-tests/invoke-{example}:{suffix}"
        archive = src / f"{example}.tar"
        run_json(module_cli, "build", app, "--image", f"docker-archive:{archive}:{tag}",
                 "--run-image", debian_base.ref)
        load_archive(docker_client, archive)
        archive.unlink()
        refs[example] = f"docker-daemon:{tag}"
    yield refs
    for ref in refs.values():
        docker_client.images.remove(ref.removeprefix("docker-daemon:"), force=True)


def _invoke(cli: CliRunner, ref: str, process: str, event: str | None
            ) -> subprocess.CompletedProcess[str]:
    args = ["invoke", ref, "--process", process]
    if event is not None:
        args += ["--event", "-"]
    return cli(*args, input=event, timeout=300)


@pytest.mark.parametrize(("example", "process", "event", "code", "check"), [
    ("python-lambda", "sum", '{"numbers": [1, 2, 3.5]}', 0,
     {"sum": 6.5, "function": "sum", "memory_mb": "512"}),
    ("python-lambda", "sum", "{}", 1, {"errorType": "KeyError", "errorMessage": "'numbers'"}),
    ("nodejs-lambda-container", "fn", '{"name": "you"}', 0,
     {"greeting": "hello, you", "functionName": "fn"}),
    ("nodejs-lambda-container", "fn", '{"fail": true}', 1,
     {"errorType": "TypeError", "errorMessage": "failed on purpose"}),
    ("python-task", "launch", '{"status": 200}', 0, {"statusCode": 200}),
    ("python-task", "launch", '{"status": 404}', 2, {"statusCode": 404}),
    ("python-task", "launch", '{"raise": true}', 1, None),
    ("python-task", "launch", "not json", 64, None),
    ("python-task", "batch", '{"status": 200}', 0, {"statusCode": 200}),
    ("python-task", "batch", '{"status": 500}', 2, None),
    ("nodejs-scheduled-task", "on-demand", '{"statusCode": 200}', 0, None),
    ("nodejs-scheduled-task", "on-demand", '{"statusCode": 404}', 2, None),
    ("nodejs-scheduled-task", "on-demand", '{"throw": true}', 1, None),
    ("nodejs-scheduled-task", "on-demand", "not json", 64, None),
])
def test_invoke_returns_the_handlers_result(
    module_cli: CliRunner, built: dict[str, str], example: str, process: str, event: str,
    code: int, check: dict[str, Any] | None,
) -> None:
    result = _invoke(module_cli, built[example], process, event)
    assert result.returncode == code, (result.stdout, result.stderr)
    if check is not None:
        document = json.loads(result.stdout)
        assert {key: document.get(key) for key in check} == check


def test_invoke_refuses_bad_json_for_a_lambda_container(
    module_cli: CliRunner, built: dict[str, str],
) -> None:
    result = _invoke(module_cli, built["python-lambda"], "sum", "{nope")
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_run_of_a_lambda_container_answers_on_9000(
    module_cli: CliRunner, built: dict[str, str],
) -> None:
    import socket

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 9000)) == 0:
            pytest.skip("port 9000 is taken on this machine")
    process = subprocess.Popen(
        [*module_cli.command, "run", built["python-lambda"]], env=module_cli.environment(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = "http://127.0.0.1:9000/2015-03-31/functions/function/invocations"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                request = urllib.request.Request(url, data=b'{"numbers": [2, 3]}')
                with opener.open(request, timeout=5) as answer:
                    assert json.loads(answer.read())["sum"] == 5
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.5)
        process.send_signal(2)
        _out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
