"""``run REF``: start an image already in the local Docker engine and follow it to its end.

The image's processes come from its ``io.hybridless.build`` label; ``--process`` selects one
through ``HYBRIDLESS_PROCESS``. A ``lambdaContainer`` process gets host port 9000 published to
its emulator on 8080, as users know from AWS's images. Logs stream as they come; Ctrl-C
stops the container (10 s grace, at once on a second Ctrl-C) and exits 130; otherwise we
exit with the container's code, or 125 when we fail before it starts (CONTRACT §1).
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from lifecycle.errors import ContainerStartFailed, UsageError
from lifecycle.phases.label import BUILD_LABEL
from lifecycle.run.interrupts import Interrupts

EMULATOR_PORT = 8080  # where the shims serve the Lambda emulator
EMULATOR_HOST_PORT = 9000  # AWS's documented "docker run -p 9000:8080"
STOP_GRACE_SECONDS = 10

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PORT_RE = re.compile(
    r"(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:]+\]):)?"
    r"(?P<host>\d{1,5}):(?P<container>\d{1,5})(?:/(?P<proto>tcp|udp))?"
)


class Sink(Protocol):
    """Where container output goes: a binary stream, or a filter in front of one."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


@dataclass(frozen=True)
class ImageProcess:
    """One process of a built image, as its build label records it."""

    name: str
    event: str
    default: bool


@dataclass(frozen=True)
class PortMapping:
    """``-p [IP:]HOST:CONTAINER[/PROTO]``."""

    host_port: int
    container_port: int
    host_ip: str = ""
    protocol: str = "tcp"


@dataclass(frozen=True)
class RunOptions:
    """Everything ``run`` needs besides the engine."""

    image: str
    process: str | None = None
    ports: tuple[PortMapping, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


def connect() -> Any:
    """Return a client of the local Docker engine, or raise 125 naming what to do."""
    try:
        import docker
        import docker.errors

        client = docker.from_env(version="auto", timeout=120)
        client.ping()
    except Exception as exc:  # the SDK raises DockerException, requests' and OS errors
        raise ContainerStartFailed(
            f"failed to reach the Docker engine: {' '.join(str(exc).split())[:300]}",
            hint="start the engine (dockerd) or set DOCKER_HOST",
        ) from exc
    return client


def find_image(client: Any, reference: str) -> Any:
    """Return the engine's image ``reference`` or raise 125."""
    import docker.errors

    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound as exc:
        raise ContainerStartFailed(
            f"failed to find image {reference!r} in the Docker engine",
            hint="load it first (push SRC docker-daemon:NAME:TAG)",
        ) from exc
    except docker.errors.APIError as exc:
        raise ContainerStartFailed(f"failed to inspect image {reference!r}: {exc}") from exc


def image_processes(labels: Mapping[str, str] | None) -> tuple[ImageProcess, ...]:
    """Read the processes of the build label; an image without one has none."""
    raw = (labels or {}).get(BUILD_LABEL)
    if not raw:
        return ()
    try:
        document = json.loads(raw)
        entries = document["processes"]
        return tuple(
            ImageProcess(name=str(p["name"]), event=str(p["event"]), default=bool(p["default"]))
            for p in entries
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ContainerStartFailed(
            f"failed to read the {BUILD_LABEL} label: its processes are malformed"
        ) from exc


def choose_process(processes: Sequence[ImageProcess], name: str | None) -> ImageProcess | None:
    """``name``'s process, else the default one; ``None`` for an image without processes."""
    if not processes:
        if name:
            raise ContainerStartFailed(
                f"failed to select process {name!r}: the image records no processes",
                hint=f"was it built by hybridless-lifecycle? ({BUILD_LABEL} label missing)",
            )
        return None
    if name is None:
        marked = [p for p in processes if p.default]
        return marked[0] if marked else processes[0]
    for process in processes:
        if process.name == name:
            return process
    names = ", ".join(p.name for p in processes)
    raise UsageError(f"failed to select process {name!r}: the image has {names}")


def parse_port(text: str) -> PortMapping:
    """Parse one ``-p`` value."""
    match = _PORT_RE.fullmatch(text)
    ports = (int(match["host"]), int(match["container"])) if match else (0, 0)
    if not match or not all(1 <= port <= 65535 for port in ports):
        raise UsageError(
            f"failed to read -p {text!r}: expected [IP:]HOST:CONTAINER[/tcp|udp]",
            hint="e.g. -p 8080:8080 or -p 127.0.0.1:9000:8080",
        )
    return PortMapping(
        host_port=ports[0],
        container_port=ports[1],
        host_ip=(match["ip"] or "").strip("[]"),
        protocol=match["proto"] or "tcp",
    )


def parse_env(text: str) -> tuple[str, str]:
    """Parse one ``-e K=V``; a bare ``K`` takes its value from our own environment."""
    import os

    name, sep, value = text.partition("=")
    if not _ENV_NAME.fullmatch(name):
        raise UsageError(f"failed to read -e {text[:80]!r}: {name[:80]!r} is not a variable name")
    if not sep:
        if name not in os.environ:
            raise UsageError(f"failed to read -e {name}: it is not set here to pass on")
        value = os.environ[name]
    if "\0" in value:
        raise UsageError(f"failed to read -e {name}: the value holds a NUL byte")
    return name, value


def read_env_file(path: Path) -> tuple[tuple[str, str], ...]:
    """Read ``--env-file`` as ``docker run`` does: K=V lines, ``#`` comments, blank lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"failed to read --env-file {path}: {exc}") from exc
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            pairs.append(parse_env(stripped))
        except UsageError as exc:
            raise UsageError(f"failed to read --env-file {path} line {number}: {exc}") from exc
    return tuple(pairs)


def run(
    client: Any,
    options: RunOptions,
    *,
    out: IO[bytes],
    err: IO[bytes],
    interrupts: Interrupts | None = None,
) -> int:
    """Run ``options.image`` to its end; return the exit code for the command."""
    with interrupts or Interrupts() as watch:
        image = find_image(client, options.image)
        process = choose_process(image_processes(image.labels), options.process)
        environment = dict(options.env)
        if options.process and process is not None:
            environment["HYBRIDLESS_PROCESS"] = process.name
        ports = published_ports(process, options.ports)
        if watch.fired:
            return watch.exit_code
        container = create(client, image.id, environment=environment, ports=ports)
        try:
            code = follow(container, out, err, watch)
            return watch.exit_code if code is None else code
        finally:
            remove(container)


def follow(container: Any, out: Sink, err: Sink, interrupts: Interrupts) -> int | None:
    """Start a created container and stream its output until it exits; ``None``: interrupted.

    Output is pumped and the exit awaited on daemon threads while this (the main) thread
    polls for signals, so Ctrl-C is seen within a fraction of a second wherever it lands:
    before the start, during it, or while logs stream. An interrupted container is stopped
    (killed at a second Ctrl-C); the caller removes it.
    """
    if interrupts.fired:
        return None
    stream = container.attach(stream=True, logs=True, demux=True)
    if interrupts.fired:
        return None
    start(container)
    pumping = threading.Thread(target=_pump_quietly, args=(stream, out, err), daemon=True)
    pumping.start()
    exit_codes: list[int] = []
    waiting = threading.Thread(target=_wait_for_exit, args=(container, exit_codes), daemon=True)
    waiting.start()
    if interrupts.wait(lambda: not waiting.is_alive()):
        # The attach stream closes at exit; let it hand over what is still in flight.
        pumping.join(timeout=5)
        return exit_codes[0] if exit_codes else 125
    stop(container, interrupts)
    pumping.join(timeout=2)
    return None


def _pump_quietly(
    stream: Iterator[tuple[bytes | None, bytes | None]], out: Sink, err: Sink
) -> None:
    try:
        pump(stream, out, err)
    except Exception:  # the stream breaks when the container is removed under it
        pass


def _wait_for_exit(container: Any, codes: list[int]) -> None:
    import docker.errors

    try:
        codes.append(int(container.wait()["StatusCode"]))
    except (docker.errors.APIError, OSError, ValueError, KeyError):
        pass  # a container removed under us: no code, which follow reports as 125


def published_ports(
    process: ImageProcess | None, requested: Sequence[PortMapping]
) -> tuple[PortMapping, ...]:
    """The ``-p`` mappings; a ``lambdaContainer`` without any gets 127.0.0.1:9000 → 8080."""
    if requested or process is None or process.event != "lambdaContainer":
        return tuple(requested)
    # Loopback only: the emulator runs the handler for anyone who can reach the port.
    return (PortMapping(EMULATOR_HOST_PORT, EMULATOR_PORT, host_ip="127.0.0.1"),)


def create(
    client: Any,
    image_id: str,
    *,
    environment: Mapping[str, str],
    ports: Iterable[PortMapping] = (),
    command: Sequence[str] | None = None,
    extra_hosts: Mapping[str, str] | None = None,
) -> Any:
    """Create (not start) a container; raise 125 when the engine refuses."""
    import docker.errors

    published: dict[str, list[tuple[str, int]]] = {}
    for port in ports:
        key = f"{port.container_port}/{port.protocol}"
        published.setdefault(key, []).append((port.host_ip, port.host_port))
    try:
        return client.containers.create(
            image_id,
            command=list(command) if command is not None else None,
            environment=dict(environment),
            ports=published or None,
            extra_hosts=dict(extra_hosts) if extra_hosts else None,
            detach=True,
            # The engine's init as PID 1 passes SIGTERM on, so a process that never installed
            # a handler (busybox httpd, node) stops at once instead of after the grace period.
            init=True,
            stdin_open=False,
            tty=False,
        )
    except docker.errors.APIError as exc:
        raise ContainerStartFailed(f"failed to create the container: {_explain(exc)}") from exc


def start(container: Any) -> None:
    """Start a created container; raise 125 when it cannot start (a port taken, say)."""
    import docker.errors

    try:
        container.start()
    except docker.errors.APIError as exc:
        raise ContainerStartFailed(f"failed to start the container: {_explain(exc)}") from exc


def pump(stream: Iterator[tuple[bytes | None, bytes | None]], out: Sink, err: Sink) -> None:
    """Copy a demultiplexed attach stream to ``out`` and ``err`` as it arrives."""
    for stdout, stderr in stream:
        if stdout:
            out.write(stdout)
            out.flush()
        if stderr:
            err.write(stderr)
            err.flush()


def stop(container: Any, interrupts: Interrupts | None = None) -> None:
    """Stop a container with a grace period; a second signal kills it at once."""
    stopping = threading.Thread(target=_stop_quietly, args=(container,), daemon=True)
    stopping.start()
    if interrupts is None:
        stopping.join()
        return
    if not interrupts.wait(lambda: not stopping.is_alive(), signals=2):
        _kill_quietly(container)
        stopping.join(timeout=5)


def _stop_quietly(container: Any) -> None:
    import docker.errors

    try:
        container.stop(timeout=STOP_GRACE_SECONDS)
    except (docker.errors.APIError, OSError):
        pass  # already gone, or the engine is: remove (force) follows either way


def _kill_quietly(container: Any) -> None:
    import docker.errors

    try:
        container.kill()
    except (docker.errors.APIError, OSError):
        pass


def remove(container: Any) -> None:
    """Remove a container, running or not; a vanished one is fine."""
    import docker.errors

    try:
        container.remove(force=True)
    except docker.errors.APIError:
        pass


def _explain(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None) or str(exc)
    return " ".join(str(explanation).split())[:400]


def stdio() -> tuple[IO[bytes], IO[bytes]]:
    """Our binary stdout and stderr, for the CLI."""
    return sys.stdout.buffer, sys.stderr.buffer
