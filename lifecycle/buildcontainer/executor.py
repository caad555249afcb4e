"""The ``docker`` executor: every buildpack command of one build runs in one build container.

The container starts at the first command (a build that reuses every layer starts none), runs
``sleep`` as a placeholder, and each command is an ``exec`` in it whose output streams to the
buildpack's log line by line. :meth:`ContainerExecutor.close` removes it; the pipeline calls
that however the build ends (error, Ctrl-C).

Commands run as the invoking uid:gid, so what they write into the bind-mounted layers belongs
to the user, with ``HOME`` on a private tmpfs: no host npm or pip configuration is visible, and
nothing they leave there survives the build.
"""

from __future__ import annotations

import codecs
import collections
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from lifecycle.buildcontainer.paths import PathMap
from lifecycle.errors import BuildError, BuildpackFailed
from lifecycle.executor import TAIL_LINES, finish
from lifecycle.hookspecs import RunResult

HOME = "/tmp/hybridless-home"
# Set for every command, for reproducible layers. HOME: see the module docstring. Tools written
# in Python (node-gyp's gyp) would otherwise drop timestamped .pyc files into the layers they
# run from (buildpacks that ship bytecode compile it explicitly), and gyp writes Makefile
# dependencies in set order, which string hash randomisation changes from run to run.
FIXED_ENV = {"HOME": HOME, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
CONTAINER_LABEL = "io.hybridless.build-container"
CA_VARIABLES = ("SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "PIP_CERT", "REQUESTS_CA_BUNDLE")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy",
                   "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
# What the OCI runtime prints when exec cannot start the program at all.
_NOT_FOUND = ("executable file not found", "no such file or directory")
# A long compile may print nothing for minutes; only a dead engine should end the wait.
_ENGINE_TIMEOUT = 3600


@dataclass(frozen=True)
class BindMount:
    """A host file or directory shown in the build container."""

    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class ContainerSpec:
    """Everything the build container is made from.

    ``extra_env`` (CA bundle and proxy variables) is added to every command by the executor and
    never enters the build environment buildpacks see, so it cannot reach layer metadata.
    """

    image: str
    mounts: tuple[BindMount, ...]
    paths: PathMap
    network: str = "host"
    user: tuple[int, int] = field(default_factory=lambda: (os.getuid(), os.getgid()))
    extra_env: Mapping[str, str] = field(default_factory=dict)


def extra_env(ca_bundle: Path | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The CA-bundle variables (pointing at the bundle's path) and the host's proxy variables."""
    env = {name: environ[name] for name in PROXY_VARIABLES if name in environ}
    if ca_bundle is not None:
        env.update({name: str(ca_bundle) for name in CA_VARIABLES})
    return env


class ContainerExecutor:
    """Runs buildpack commands with ``exec`` in one lazily started build container."""

    name = "docker"

    def __init__(self, spec: ContainerSpec, client: Any, log: logging.Logger) -> None:
        self.spec = spec
        self._client = client
        self._log = log
        self._container: Any = None
        self.started = 0
        """How many containers this executor started (0 or 1): tests and the bench read it."""

    def __enter__(self) -> ContainerExecutor:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def run(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path,
            log: logging.Logger, check: bool, capture: bool, buildpack: str) -> RunResult:
        """Run ``argv`` in the build container; a non-zero exit with ``check`` is exit 50."""
        container = self._ensure_started()
        paths = self.spec.paths
        inside = paths.argv(argv)
        environment = {**paths.env(env), **self.spec.extra_env, **FIXED_ENV}
        log.debug("$ %s (in the build container, in %s)", " ".join(inside),
                  paths.translate(str(cwd)))
        import docker.errors
        import requests.exceptions

        api = self._client.api
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        captured: list[str] = []
        try:
            exec_id = api.exec_create(
                container.id, inside, environment=[f"{k}={v}" for k, v in environment.items()],
                workdir=paths.translate(str(cwd)), user=self._user, stdout=True, stderr=True,
            )["Id"]
            for line in _lines(api.exec_start(exec_id, stream=True)):
                tail.append(line)
                if capture:
                    captured.append(line)
                else:
                    log.info("  %s", line)
            code = api.exec_inspect(exec_id).get("ExitCode")
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise BuildError(f"failed to run {' '.join(argv)!r} for buildpack '{buildpack}' in "
                             f"the build container: the Docker engine failed ({exc})",
                             hint="check `docker info`, or build with --executor local") from exc
        returncode = 1 if code is None else int(code)
        if returncode in (126, 127) and any(
                marker in "\n".join(tail) for marker in _NOT_FOUND) and len(tail) <= 3:
            raise BuildpackFailed(
                f"failed to run {argv[0]!r} for buildpack '{buildpack}': command not found in "
                f"the build image {self.spec.image}",
                hint="pick a stack whose build image has it, or install it in a layer first")
        return finish(argv, returncode, tail, captured, check=check, buildpack=buildpack)

    def close(self) -> None:
        """Remove the build container, if one was started; safe to call twice."""
        container, self._container = self._container, None
        if container is None:
            return
        import docker.errors

        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            self._log.warning("could not remove build container %s: %s", container.short_id,
                              exc)

    @property
    def _user(self) -> str:
        return f"{self.spec.user[0]}:{self.spec.user[1]}"

    def _ensure_started(self) -> Any:
        if self._container is not None:
            return self._container
        import docker.errors
        from docker.types import Mount

        uid, gid = self.spec.user
        mounts = [Mount(target=m.target, source=str(m.source), type="bind",
                        read_only=m.read_only) for m in self.spec.mounts]
        self._log.info("starting a build container from %s (network %s, user %s)",
                       self.spec.image, self.spec.network, self._user)
        try:
            self._container = self._client.containers.run(
                self.spec.image, entrypoint=["sleep"], command=["2147483647"], detach=True,
                user=self._user, network_mode=self.spec.network, mounts=mounts,
                tmpfs={HOME: f"uid={uid},gid={gid},mode=0700"},
                labels={CONTAINER_LABEL: "1"}, environment={"HOME": HOME},
                working_dir="/var/task",
            )
        except docker.errors.ImageNotFound as exc:
            raise BuildError(f"failed to start a build container: the engine has no image "
                             f"{self.spec.image}",
                             hint="load the stack's build image, or build with "
                                  "--executor local") from exc
        except docker.errors.APIError as exc:
            raise BuildError(f"failed to start a build container from {self.spec.image}: "
                             f"{exc.explanation or exc}",
                             hint="check `docker info`, or build with --executor local") from exc
        self.started += 1
        return self._container


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Split a byte stream into text lines, decoding UTF-8 across chunk boundaries."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        *complete, pending = pending.split("\n")
        yield from (line.rstrip("\r") for line in complete)
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending.rstrip("\r")


def connect(timeout: float = _ENGINE_TIMEOUT) -> Any:
    """A docker SDK client for the engine of the environment (``DOCKER_HOST`` or the socket)."""
    import docker

    return docker.from_env(timeout=int(timeout))
