"""``run`` and ``invoke`` against the real Docker engine, with a busybox image made here.

The image stands in for a built one: it carries an ``io.hybridless.build`` label with four
processes and a launcher that picks one by ``HYBRIDLESS_PROCESS``. Its ``lambdaContainer``
process is a small Runtime API client written with busybox's wget, so the container really
reaches our server through ``host.docker.internal``. (The official clients are exercised
against the server in test_runtime_api_clients.py; the built images' shims in the e2e tests.)
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lifecycle.errors import ContainerStartFailed, UsageError
from lifecycle.run.interrupts import Interrupts
from lifecycle.run.invoke import InvokeOptions, invoke
from lifecycle.run.runner import (
    PortMapping,
    RunOptions,
    choose_process,
    image_processes,
    parse_env,
    parse_port,
    read_env_file,
    run,
)
from tests.infra.images import DockerImage
from tests.infra.net import free_port, get_when_up

if TYPE_CHECKING:
    import docker

LAUNCHER = """#!/bin/sh
case "${HYBRIDLESS_PROCESS:-web}" in
  web) exec /app/web.sh "$@" ;;
  task) exec /app/task.sh "$@" ;;
  fn) exec /app/lambda.sh "$@" ;;
  api) exec /app/web.sh "$@" ;;
esac
echo "no process $HYBRIDLESS_PROCESS" >&2
exit 99
"""

WEB = """#!/bin/sh
echo "web up $GREETING"
echo "to stderr" >&2
mkdir -p /tmp/www && echo "served" > /tmp/www/index.html
exec httpd -f -p 8080 -h /tmp/www
"""

# Mimics the task contract of CONTRACT §4 closely enough to check that invoke passes it on.
TASK = """#!/bin/sh
echo "log line one"
echo "log line two" >&2
case "$1" in
  bad*) exit 64 ;;
  *fail*) echo '{"statusCode":500}'; exit 2 ;;
esac
echo "{\\"statusCode\\":200,\\"event\\":$1}"
"""

LAMBDA = """#!/bin/sh
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
wget -q -S -O /tmp/event "$api/invocation/next" 2>/tmp/headers || exit 3
id=$(sed -n 's/^ *[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *//p' /tmp/headers | tr -d '\\r')
echo "invocation $id" >&2
if grep -q crash /tmp/event; then exit 7; fi
if grep -q fail /tmp/event; then
  doc='{"errorMessage":"nope","errorType":"Boom","stackTrace":["a"]}'
  wget -q -O /dev/null --post-data "$doc" "$api/invocation/$id/error"
else
  wget -q -O /dev/null --post-data "{\\"got\\":$(cat /tmp/event)}" "$api/invocation/$id/response"
fi
exec sleep 3600
"""

PROCESSES = [
    {"name": "web", "event": "httpd", "command": [], "default": True},
    {"name": "task", "event": "launchableTask", "command": [], "default": False},
    {"name": "fn", "event": "lambdaContainer", "command": [], "default": False},
    {"name": "api", "event": "process", "command": [], "default": False},
]


@pytest.fixture(scope="module")
def fake_image(
    docker_client: docker.DockerClient,
    busybox_in_docker: DockerImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A busybox image with a launcher, four processes and their build label."""
    context = tmp_path_factory.mktemp("fake-image")
    for name, text in (("launcher", LAUNCHER), ("web.sh", WEB), ("task.sh", TASK)):
        (context / name).write_text(text)
    (context / "lambda.sh").write_text(LAMBDA)
    label = json.dumps({"processes": PROCESSES})
    (context / "Dockerfile").write_text(
        f"FROM {busybox_in_docker.name}\n"
        "COPY --chmod=0755 launcher /hybridless/launcher\n"
        "COPY --chmod=0755 web.sh task.sh lambda.sh /app/\n"
        f"LABEL io.hybridless.build={json.dumps(label)}\n"
        'ENTRYPOINT ["/hybridless/launcher"]\n'
    )
    tag = f"hybridless-tests/run-invoke:{os.getpid()}"
    try:
        docker_client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    except Exception:
        # The classic builder of engine 20.10 lacks COPY --chmod: set modes in the context.
        text = (context / "Dockerfile").read_text().replace("--chmod=0755 ", "")
        (context / "Dockerfile").write_text(text)
        for name in ("launcher", "web.sh", "task.sh", "lambda.sh"):
            (context / name).chmod(0o755)
        docker_client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    yield tag
    try:
        docker_client.images.remove(tag, force=True)
    except Exception:
        pass


def _invoke(
    client: docker.DockerClient,
    image: str,
    process: str | None,
    event: bytes | None,
    timeout: float = 60,
) -> tuple[int, bytes, bytes]:
    out, err = io.BytesIO(), io.BytesIO()
    code = invoke(
        client,
        InvokeOptions(image=image, process=process, event=event, timeout_seconds=timeout),
        out=out,
        err=err,
    )
    return code, out.getvalue(), err.getvalue()


# --- lambdaContainer through the Runtime API server --------------------------------------


def test_invoke_lambda_container_returns_the_result(
    docker_client: docker.DockerClient, fake_image: str
) -> None:
    code, out, err = _invoke(docker_client, fake_image, "fn", b'{"n": 1}')
    assert code == 0, err
    assert json.loads(out) == {"got": {"n": 1}}
    assert b"invocation " in err  # the function's logs go to stderr


def test_invoke_lambda_container_error_document(
    docker_client: docker.DockerClient, fake_image: str
) -> None:
    code, out, _err = _invoke(docker_client, fake_image, "fn", b'{"fail": true}')
    assert code == 1
    assert json.loads(out) == {"errorMessage": "nope", "errorType": "Boom", "stackTrace": ["a"]}


def test_invoke_lambda_container_that_dies(
    docker_client: docker.DockerClient, fake_image: str
) -> None:
    code, out, _err = _invoke(docker_client, fake_image, "fn", b'{"crash": true}')
    assert code == 1
    assert json.loads(out)["errorType"] == "Runtime.ExitError"
    assert "code 7" in json.loads(out)["errorMessage"]


def test_invoke_lambda_container_refuses_bad_json(
    docker_client: docker.DockerClient, fake_image: str
) -> None:
    with pytest.raises(UsageError, match="not valid JSON"):
        _invoke(docker_client, fake_image, "fn", b"{nope")


# --- task types --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "code", "last"),
    [
        (b'{"a": 1}', 0, b'{"statusCode":200,"event":{"a": 1}}'),
        (b'{"fail": 1}', 2, b'{"statusCode":500}'),
        (b"bad json", 64, b"log line one"),
    ],
)
def test_invoke_task_passes_the_task_codes(
    docker_client: docker.DockerClient, fake_image: str, event: bytes, code: int, last: bytes
) -> None:
    got, out, err = _invoke(docker_client, fake_image, "task", event)
    assert got == code
    assert out == last + b"\n"
    assert b"log line two" in err


def test_invoke_refuses_long_running_processes(
    docker_client: docker.DockerClient, fake_image: str
) -> None:
    with pytest.raises(UsageError, match="use run"):
        _invoke(docker_client, fake_image, "web", b"{}")
    with pytest.raises(UsageError, match="has web, task, fn, api"):
        _invoke(docker_client, fake_image, "nope", b"{}")


def test_missing_image_is_125(docker_client: docker.DockerClient) -> None:
    with pytest.raises(ContainerStartFailed) as caught:
        _invoke(docker_client, "hybridless-tests/absent:never", None, b"{}")
    assert caught.value.exit_code == 125


# --- run -----------------------------------------------------------------------------------




def test_run_serves_and_stops_on_ctrl_c(
    docker_client: docker.DockerClient, fake_image: str, tmp_path: Path
) -> None:
    port = free_port()
    script = (
        "import sys\n"
        "from lifecycle.run.runner import RunOptions, connect, parse_port, run, stdio\n"
        f"options = RunOptions(image={fake_image!r}, ports=(parse_port('127.0.0.1:{port}:8080'),),"
        " env=(('GREETING', 'hi'),))\n"
        "sys.exit(run(connect(), options, out=stdio()[0], err=stdio()[1]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        # Generous: a loaded machine may take long to start the container; once it serves,
        # the init in the container stops httpd at SIGTERM, so the exit itself is quick.
        assert get_when_up(f"http://127.0.0.1:{port}/index.html") == b"served\n"
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
        took = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    # Not the 10 s grace period: httpd got SIGTERM through the container's init.
    assert took < 9, took
    assert b"web up hi" in stdout
    assert b"to stderr" in stderr
    left = docker_client.containers.list(all=True, filters={"ancestor": fake_image})
    assert not left


class _InterruptingSink:
    """Sends this process SIGINT at the first output: a Ctrl-C while logs stream."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> int:
        if not self.data:
            os.kill(os.getpid(), signal.SIGINT)
        self.data += data
        return len(data)

    def flush(self) -> None:
        pass


def test_ctrl_c_while_logs_stream(docker_client: docker.DockerClient, fake_image: str) -> None:
    out = _InterruptingSink()
    options = RunOptions(image=fake_image, ports=(PortMapping(free_port(), 8080, "127.0.0.1"),))
    started = time.monotonic()
    code = run(docker_client, options, out=out, err=io.BytesIO())  # type: ignore[arg-type]
    assert code == 130
    assert out.data.startswith(b"web up")
    assert time.monotonic() - started < 60
    assert not docker_client.containers.list(all=True, filters={"ancestor": fake_image})


@pytest.mark.parametrize("command", ["run", "invoke-task", "invoke-lambda"])
def test_ctrl_c_before_the_container_starts(
    docker_client: docker.DockerClient, fake_image: str, command: str
) -> None:
    # The signal lands while run/invoke look the image up: nothing may be started or left.
    before = {c.id for c in docker_client.containers.list(all=True)}
    with Interrupts() as watch:
        os.kill(os.getpid(), signal.SIGINT)
        assert watch.fired
        if command == "run":
            code = run(docker_client, RunOptions(image=fake_image), out=io.BytesIO(),
                       err=io.BytesIO(), interrupts=watch)
        else:
            process = "task" if command == "invoke-task" else "fn"
            code = invoke(docker_client, InvokeOptions(image=fake_image, process=process,
                                                       event=b"{}"),
                          out=io.BytesIO(), err=io.BytesIO(), interrupts=watch)
    assert code == 130
    assert {c.id for c in docker_client.containers.list(all=True)} <= before


def test_sigterm_exits_143(docker_client: docker.DockerClient, fake_image: str) -> None:
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with Interrupts() as watch:
        os.kill(os.getpid(), signal.SIGTERM)
        code = run(docker_client, RunOptions(image=fake_image), out=io.BytesIO(),
                   err=io.BytesIO(), interrupts=watch)
    assert code == 143
    # The handlers in place before are back.
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == previous


def test_run_exits_with_the_container_code(
    docker_client: docker.DockerClient, fake_image: str
) -> None:
    out, err = io.BytesIO(), io.BytesIO()
    code = run(
        docker_client,
        RunOptions(image=fake_image, process="task", env=(("X", "1"),)),
        out=out,
        err=err,
    )
    # No argument: the stand-in task prints its lines and a result for "$1" empty.
    assert code == 0
    assert b"log line one" in out.getvalue()
    assert b"log line two" in err.getvalue()
    missing = RunOptions(image=fake_image, process="nope")
    with pytest.raises(UsageError):
        run(docker_client, missing, out=out, err=err)


def test_run_lambda_container_publishes_9000(
    docker_client: docker.DockerClient, fake_image: str
) -> None:
    # Created, not started: port 9000 may be in use on a shared machine.
    import lifecycle.run.runner as run_module

    image = run_module.find_image(docker_client, fake_image)
    process = choose_process(image_processes(image.labels), "fn")
    assert process is not None and process.event == "lambdaContainer"
    ports = run_module.published_ports(process, ())
    assert ports == (PortMapping(9000, 8080, host_ip="127.0.0.1"),)
    web = choose_process(image_processes(image.labels), None)
    assert run_module.published_ports(web, ()) == ()
    assert run_module.published_ports(process, (PortMapping(1, 2),)) == (PortMapping(1, 2),)
    container = run_module.create(docker_client, image.id, environment={}, ports=ports)
    try:
        bindings = container.attrs["HostConfig"]["PortBindings"]
        assert bindings == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}]}
    finally:
        run_module.remove(container)


def test_port_taken_is_125(docker_client: docker.DockerClient, fake_image: str) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        options = RunOptions(image=fake_image, ports=(PortMapping(port, 8080, "127.0.0.1"),))
        with pytest.raises(ContainerStartFailed) as caught:
            run(docker_client, options, out=io.BytesIO(), err=io.BytesIO())
    assert caught.value.exit_code == 125


# --- parsing -------------------------------------------------------------------------------


def test_parse_port() -> None:
    assert parse_port("9000:8080") == PortMapping(9000, 8080)
    assert parse_port("127.0.0.1:9000:8080/udp") == PortMapping(9000, 8080, "127.0.0.1", "udp")
    for bad in ("9000", "0:80", "70000:80", "a:b", "1:2:3:4", "9000:8080/sctp", ""):
        with pytest.raises(UsageError):
            parse_port(bad)


def test_parse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HERE", "yes")
    assert parse_env("A=b=c") == ("A", "b=c")
    assert parse_env("FROM_HERE") == ("FROM_HERE", "yes")
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    for bad in ("=x", "1A=x", "A B=x", "NOT_SET_HERE", "A=\0"):
        with pytest.raises(UsageError):
            parse_env(bad)


def test_env_file(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text("# comment\n\nA=1\nB = 2\n")
    with pytest.raises(UsageError, match="line 4"):
        read_env_file(path)
    path.write_text("# comment\n\nA=1\nB=two words\n")
    assert read_env_file(path) == (("A", "1"), ("B", "two words"))
    path.write_bytes(b"A=\xff\n")
    with pytest.raises(UsageError):
        read_env_file(path)
    with pytest.raises(UsageError):
        read_env_file(tmp_path / "absent")


def test_malformed_build_label() -> None:
    with pytest.raises(ContainerStartFailed):
        image_processes({"io.hybridless.build": "{not json"})
    assert image_processes({}) == ()
    assert choose_process((), None) is None
