"""Running built images in the Docker engine, for end-to-end tests of any runtime buildpack.

Helpers, all on a ``docker.DockerClient`` (the ``docker_client`` fixture):

- :func:`load_archive` loads a ``docker-archive:`` the CLI wrote and returns its tags;
- :func:`run_to_exit` runs a container to completion with arguments and environment and
  returns its exit code with stdout and stderr kept apart (task event types);
- :class:`RunningContainer` (usually through :func:`running`) starts a long-lived container
  with ports published on 127.0.0.1 at ports the engine picks, waits until it answers HTTP,
  and collects its logs (``httpd`` and the Lambda emulator); :func:`fetch` is one request
  to a fresh container.

Containers are always removed, even when a test fails; a failure message carries the logs.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Container, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import docker
    import docker.models.containers

# Loopback services must never be reached through a proxy taken from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Finished:
    """A container that ran to its end: exit code and what it wrote, stream by stream."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        """The last non-empty stdout line (where task shims print their result)."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def load_archive(client: docker.DockerClient, archive: Path) -> list[str]:
    """``docker load`` a docker-archive file; return the tags of the images it held."""
    with archive.open("rb") as data:
        images = client.images.load(data)
    tags = [tag for image in images for tag in image.tags]
    if not tags:
        raise RuntimeError(f"failed to load {archive}: the engine loaded no tagged image")
    return tags


def run_to_exit(
    client: docker.DockerClient,
    image: str,
    args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    entrypoint: Sequence[str] | None = None,
) -> Finished:
    """Run ``image`` with ``args`` until it exits (or ``timeout`` seconds, then kill it)."""
    container = client.containers.run(
        image,
        list(args),
        environment=dict(env or {}),
        detach=True,
        entrypoint=list(entrypoint) if entrypoint is not None else None,
    )
    try:
        try:
            status = container.wait(timeout=timeout)
        except Exception as exc:  # the SDK raises a requests timeout type; any error ends it
            container.kill()
            raise TimeoutError(
                f"{image} {list(args)} did not exit within {timeout:g}s:\n{_logs(container)}"
            ) from exc
        return Finished(
            int(status["StatusCode"]),
            container.logs(stdout=True, stderr=False).decode(errors="replace"),
            container.logs(stdout=False, stderr=True).decode(errors="replace"),
        )
    finally:
        container.remove(force=True)


class RunningContainer:
    """A detached container whose ports are published on 127.0.0.1 at engine-chosen ports."""

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        ports: Sequence[int] = (8080,),
    ) -> None:
        self.client = client
        self.image = image
        self.args = tuple(args)
        self.env = dict(env or {})
        self.ports = tuple(ports)
        self._container: docker.models.containers.Container | None = None

    @property
    def container(self) -> docker.models.containers.Container:
        """The engine's container object (started by :meth:`start`)."""
        if self._container is None:
            raise RuntimeError("the container is not started")
        return self._container

    def start(self) -> RunningContainer:
        """Create and start the container."""
        self._container = self.client.containers.run(
            self.image,
            list(self.args),
            environment=self.env,
            detach=True,
            ports={f"{port}/tcp": ("127.0.0.1",) for port in self.ports},
        )
        return self

    def host_port(self, port: int = 8080) -> int:
        """The 127.0.0.1 port the engine published ``port`` at."""
        self.container.reload()
        bindings = (self.container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp")
        if not bindings:
            raise RuntimeError(f"port {port} of {self.image} is not published:\n{self.logs()}")
        return int(bindings[0]["HostPort"])

    def url(self, path: str = "/", port: int = 8080) -> str:
        """``http://127.0.0.1:<published port><path>``."""
        return f"http://127.0.0.1:{self.host_port(port)}{path}"

    def wait_http(
        self,
        path: str = "/",
        *,
        port: int = 8080,
        timeout: float = 30,
        statuses: Container[int] = range(200, 600),
    ) -> int:
        """Poll until ``path`` answers with one of ``statuses``; fail at once if it exits."""
        url = self.url(path, port)
        deadline = time.monotonic() + timeout
        last = "no attempt made"
        while True:
            self.container.reload()
            if self.container.status in ("exited", "dead"):
                raise RuntimeError(f"{self.image} exited before answering {url}:\n{self.logs()}")
            try:
                with _DIRECT.open(url, timeout=2) as response:
                    status = int(response.status)
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (OSError, ValueError) as exc:
                status, last = 0, str(exc)
            if status in statuses:
                return status
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{url} did not answer within {timeout:g}s ({last}):\n{self.logs()}"
                )
            time.sleep(0.1)

    def logs(self, *, stdout: bool = True, stderr: bool = True) -> str:
        """What the container has written so far."""
        return _logs(self.container, stdout=stdout, stderr=stderr)

    def stop(self, timeout: float = 10) -> int:
        """Send SIGTERM (SIGKILL after ``timeout``) and return the exit code."""
        self.container.stop(timeout=int(timeout))
        return int(self.container.wait(timeout=timeout + 10)["StatusCode"])

    def remove(self) -> None:
        """Remove the container, running or not."""
        if self._container is not None:
            self._container.remove(force=True)
            self._container = None


@contextmanager
def running(
    client: docker.DockerClient,
    image: str,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    ports: Sequence[int] = (8080,),
    wait_path: str | None = "/",
    timeout: float = 30,
) -> Iterator[RunningContainer]:
    """Start a container, wait for ``wait_path`` to answer (unless None), remove it after."""
    started = RunningContainer(client, image, args=args, env=env, ports=ports).start()
    try:
        if wait_path is not None:
            started.wait_http(wait_path, port=ports[0], timeout=timeout)
        yield started
    finally:
        started.remove()


def fetch(client: docker.DockerClient, image: str, path: str, *, timeout: float = 20
          ) -> tuple[int, str]:
    """Start ``image``, wait until ``path`` answers on port 8080, and return the status and
    body of one more request; the container is removed after."""
    with running(client, image, wait_path=path, timeout=timeout) as app:
        try:
            with _DIRECT.open(app.url(path), timeout=5) as response:
                return int(response.status), response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")


def _logs(container: Any, *, stdout: bool = True, stderr: bool = True) -> str:
    try:
        return str(container.logs(stdout=stdout, stderr=stderr).decode(errors="replace"))
    except Exception as exc:  # a container already gone still deserves a readable failure
        return f"(no logs: {exc})"
