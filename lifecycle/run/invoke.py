"""``invoke REF``: one invocation of an image's process in the local Docker engine.

* ``lambdaContainer``: the container's own Runtime API client (``AWS_LAMBDA_RUNTIME_API``)
  talks to our :mod:`lifecycle.run.runtime_api` server on the host, reached through
  ``host.docker.internal`` mapped to the engine's ``host-gateway``. The handler's result is
  printed as JSON on stdout and we exit 0; an error prints the
  ``{errorMessage, errorType, stackTrace}`` document and exits 1.
* ``launchableTask`` / ``job`` / ``scheduledTask``: the event is the container's argument; its
  exit code is ours (CONTRACT §4: 0, 1, 2 for a non-200 status, 64 for bad JSON) and the last
  line it writes on stdout (the result) is ours; its other output goes to stderr.

Exit 125 means we failed before the container started.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, replace
from typing import IO, Any

from lifecycle.errors import ContainerStartFailed, UsageError
from lifecycle.run.defaults import process_defaults
from lifecycle.run.interrupts import Interrupts
from lifecycle.run.runner import (
    choose_process,
    create,
    find_image,
    follow,
    image_processes,
    pump,
    remove,
    start,
    stop,
)
from lifecycle.run.runtime_api import (
    LAMBDA_PAYLOAD_LIMIT,
    FunctionError,
    Invocation,
    InvocationResult,
    RuntimeApiServer,
)

TASK_EVENTS = frozenset({"launchableTask", "job", "scheduledTask"})
GATEWAY_HOST = "host.docker.internal"
DEFAULT_TIMEOUT_SECONDS = 300.0  # AWS's emulator default (REFERENCE §3)
_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class InvokeOptions:
    """What ``invoke`` was asked: the image, the process and the event (``None``: none given)."""

    image: str
    process: str | None = None
    event: bytes | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS


def invoke(
    client: Any,
    options: InvokeOptions,
    *,
    out: IO[bytes],
    err: IO[bytes],
    interrupts: Interrupts | None = None,
) -> int:
    """Invoke the process once; return the exit code for the command."""
    with interrupts or Interrupts() as watch:
        return _invoke(client, options, out, err, watch)


def _invoke(
    client: Any, options: InvokeOptions, out: IO[bytes], err: IO[bytes], watch: Interrupts
) -> int:
    image = find_image(client, options.image)
    process = choose_process(image_processes(image.labels), options.process)
    if process is None:
        raise ContainerStartFailed(
            f"failed to invoke {options.image!r}: the image records no processes",
            hint="invoke takes images built by hybridless-lifecycle",
        )
    environment = {"HYBRIDLESS_PROCESS": process.name}
    if process.event == "lambdaContainer":
        return _invoke_lambda(
            client, image.id, process.name, environment, options, out, err, watch
        )
    if process.event in TASK_EVENTS:
        return _invoke_task(
            client, image.id, process.event, environment, options, out, err, watch
        )
    raise UsageError(
        f"failed to invoke process {process.name!r}: a {process.event} process is not invoked once",
        hint="use run for httpd and process event types",
    )


def _invoke_task(
    client: Any,
    image_id: str,
    event_type: str,
    environment: dict[str, str],
    options: InvokeOptions,
    out: IO[bytes],
    err: IO[bytes],
    watch: Interrupts,
) -> int:
    if options.event is None:
        command: list[str] = [] if event_type == "scheduledTask" else ["{}"]
    else:
        try:
            command = [options.event.decode("utf-8")]
        except UnicodeDecodeError as exc:
            raise UsageError("failed to read the event: it is not UTF-8 text") from exc
        if "\0" in command[0]:
            raise UsageError("failed to read the event: it holds a NUL byte")
    if watch.fired:
        return watch.exit_code
    container = create(client, image_id, environment=environment, command=command)
    lines = _LastLine(err)
    try:
        code = follow(container, lines, err, watch)
    finally:
        remove(container)
    if code is None:
        return watch.exit_code
    result = lines.finish()
    if result:
        out.write(result + b"\n")
        out.flush()
    return code


def _invoke_lambda(
    client: Any,
    image_id: str,
    process_name: str,
    environment: dict[str, str],
    options: InvokeOptions,
    out: IO[bytes],
    err: IO[bytes],
    watch: Interrupts,
) -> int:
    event = options.event if options.event is not None else b"{}"
    if len(event) > LAMBDA_PAYLOAD_LIMIT:
        raise UsageError(f"failed to read the event: {len(event)} bytes exceed Lambda's 6 MB")
    try:
        json.loads(event)
    except ValueError as exc:
        raise UsageError(f"failed to read the event: it is not valid JSON ({exc})") from exc
    # The image's own values (memory, timeout, name) beat Lambda's stand-ins below.
    defaults = process_defaults(client, image_id, process_name)
    timeout = options.timeout_seconds
    if options.timeout_seconds == DEFAULT_TIMEOUT_SECONDS and defaults.get("TIMEOUT", "").isdigit():
        timeout = max(1.0, int(defaults["TIMEOUT"]) / 1000)
    options = replace(options, timeout_seconds=timeout)
    invocation = Invocation(
        event=event, function_name=process_name, timeout_seconds=options.timeout_seconds
    )
    host = _gateway_address(client)
    try:
        server = RuntimeApiServer(invocation, host=host)
    except OSError:
        # The gateway address is not ours to bind (a VM-based engine, say): listen everywhere.
        server = RuntimeApiServer(invocation, host="0.0.0.0")
    with server:
        environment = {
            **environment,
            "AWS_LAMBDA_RUNTIME_API": f"{GATEWAY_HOST}:{server.port}",
            **{
                key: value
                for key, value in lambda_environment(process_name, timeout).items()
                if key not in defaults
            },
        }
        if watch.fired:
            return watch.exit_code
        container = create(
            client,
            image_id,
            environment=environment,
            extra_hosts={GATEWAY_HOST: "host-gateway"},
        )
        try:
            if watch.fired:
                return watch.exit_code
            stream = container.attach(stream=True, logs=True, demux=True)
            start(container)
            # Everything the function logs is diagnostics: stdout carries only the result.
            logger = threading.Thread(target=pump, args=(stream, err, err), daemon=True)
            logger.start()
            result = _await(server, container, options.timeout_seconds, watch)
            if result is None:
                stop(container, watch)
                return watch.exit_code
        finally:
            remove(container)
    return _report(result, out, options.timeout_seconds)


def lambda_environment(function_name: str, timeout_seconds: float) -> dict[str, str]:
    """What Lambda sets for every function; aws-lambda-ric 4.x refuses to start without it."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008",  # the emulator's default (REFERENCE §3)
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(max(1, int(timeout_seconds))),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "$LATEST",
    }


def _await(
    server: RuntimeApiServer, container: Any, timeout: float, watch: Interrupts
) -> InvocationResult | int | None:
    """Wait for the result; the container's exit code if it ended without one; None: a signal."""
    deadline = time.monotonic() + timeout + _GRACE_SECONDS
    while time.monotonic() < deadline:
        if watch.fired:
            return None
        result = server.wait(timeout=0.2)
        if result is not None:
            return result
        container.reload()
        if container.status in ("exited", "dead"):
            # It may have posted just before exiting.
            late = server.wait(timeout=0.2)
            if late is not None:
                return late
            return int(container.attrs.get("State", {}).get("ExitCode", 1)) or 1
    return -1


def _report(result: InvocationResult | int, out: IO[bytes], timeout: float) -> int:
    if isinstance(result, int):
        if result == -1:
            error = FunctionError(f"Task timed out after {timeout:g} seconds", "Sandbox.Timedout")
        else:
            error = FunctionError(
                f"the runtime exited with code {result} before it answered",
                "Runtime.ExitError",
            )
        out.write(json.dumps(error.document()).encode() + b"\n")
        out.flush()
        return 1
    if result.ok:
        out.write(result.payload + b"\n")
        out.flush()
        return 0
    assert result.error is not None
    out.write(json.dumps(result.error.document()).encode() + b"\n")
    out.flush()
    return 1


def _gateway_address(client: Any) -> str:
    """The host's address on the engine's default bridge, which ``host-gateway`` names."""
    try:
        bridge = client.networks.get("bridge")
        for config in bridge.attrs.get("IPAM", {}).get("Config", []) or []:
            if config.get("Gateway"):
                return str(config["Gateway"])
            subnet = str(config.get("Subnet", ""))
            if "." in subnet:
                import ipaddress

                return str(next(ipaddress.ip_network(subnet, strict=False).hosts()))
    except Exception:  # an engine without the default bridge: listen everywhere
        return "0.0.0.0"
    return "0.0.0.0"


class _LastLine:
    """A byte sink that forwards every stdout line but the last to ``err``."""

    def __init__(self, err: IO[bytes]) -> None:
        self.err = err
        self.pending = b""

    def write(self, data: bytes) -> int:
        """Take more output; forward the lines that are no longer the last."""
        self.pending += data
        *complete, partial = self.pending.split(b"\n")
        if not partial and complete:
            # Output ends with a newline: its last line may be the result, hold it back.
            partial = complete.pop() + b"\n"
        for line in complete:
            self.err.write(line + b"\n")
        self.pending = partial
        return len(data)

    def flush(self) -> None:
        """Flush what was forwarded."""
        self.err.flush()

    def finish(self) -> bytes:
        """The last stdout line (without its newline), which is the task's result."""
        return self.pending.rstrip(b"\r\n")
