"""``--executor auto|docker|local``: which executor runs the build's commands, and why.

``auto`` takes ``docker`` when there is a build image (the stack's, or ``HYBRIDLESS_BUILD_IMAGE``)
and a Docker engine answers, else ``local``; the reason is printed either way. The stack's
build image is put into the engine only once the engine has answered: from the local store
(built there first when missing) through the ``docker-daemon:`` sink. The choice, with the
build image's id, is also the key that keeps layers made by one executor from being reused by
another.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lifecycle.cache.layers import LOCAL_EXECUTOR
from lifecycle.errors import BaseImageNotFound, BuildError, UsageError

EXECUTORS = ("auto", "docker", "local")
BUILD_IMAGE_ENV = "HYBRIDLESS_BUILD_IMAGE"
"""Names an image already in the Docker engine to build in; it beats the stack's."""
_PROBE_TIMEOUT = 5


@dataclass(frozen=True)
class BuildImage:
    """Where build commands may run: an engine image name, and how to get it there.

    ``provide`` returns the image (an :class:`lifecycle.image.image.Image`) to load when the
    engine lacks ``name``; None means the image must already be in the engine.
    """

    name: str
    source: str
    provide: Callable[[], Any] | None = None


@dataclass(frozen=True)
class ExecutorChoice:
    """The executor picked for one build, the reason printed, and the build image used."""

    name: str
    reason: str
    image: str | None = None
    image_id: str | None = None

    @property
    def cache_key(self) -> str:
        """What layer records carry: ``local``, or ``docker <build image id>``."""
        return LOCAL_EXECUTOR if self.name == LOCAL_EXECUTOR else f"docker {self.image_id}"


def build_image_of(stack_image: BuildImage | None, environ: Mapping[str, str] | None = None
                   ) -> BuildImage | None:
    """The build image: ``$HYBRIDLESS_BUILD_IMAGE`` when set, else the stack's (if any)."""
    environ = os.environ if environ is None else environ
    named = environ.get(BUILD_IMAGE_ENV, "").strip()
    if named:
        return BuildImage(named, f"${BUILD_IMAGE_ENV}")
    return stack_image


def choose(requested: str, image: BuildImage | None, log: logging.Logger,
           connect: Any = None) -> tuple[ExecutorChoice, Any]:
    """Pick the executor; returns the choice and a docker client when it is ``docker``.

    ``connect`` makes the client (the SDK's, by default); tests pass one for a dead engine.
    """
    if requested not in EXECUTORS:
        raise UsageError(f"--executor {requested}: expected one of {', '.join(EXECUTORS)}")
    if requested == LOCAL_EXECUTOR:
        choice = ExecutorChoice(LOCAL_EXECUTOR, "--executor local")
        log.info("executor: local (%s)", choice.reason)
        return choice, None
    if image is None:
        if requested == "docker":
            raise BaseImageNotFound(
                "failed to use --executor docker: there is no build image to run commands in "
                "(no stack with a build image was chosen)",
                hint=f"build on a stack (not --run-image), set {BUILD_IMAGE_ENV}=IMAGE, or "
                     "use --executor local")
        return _local("auto: no build image (no stack with one was chosen)", log), None
    client, problem = _engine(connect)
    if client is None:
        if requested == "docker":
            raise BuildError(f"failed to use --executor docker: the Docker engine does not "
                             f"answer ({problem})",
                             hint="start the engine (`docker info`), or use --executor local")
        return _local(f"auto: the Docker engine does not answer ({problem})", log), None
    image_id = _image_id(client, image, log)
    why = "--executor docker" if requested == "docker" else "auto: the Docker engine answers"
    choice = ExecutorChoice("docker", f"{why}; build image {image.name} from {image.source}",
                            image.name, image_id)
    log.info("executor: docker (%s, %s)", choice.reason, image_id[:19])
    return choice, client


def _local(reason: str, log: logging.Logger) -> ExecutorChoice:
    choice = ExecutorChoice(LOCAL_EXECUTOR, reason)
    log.info("executor: local (%s); buildpack commands run on this host", reason)
    return choice


def _engine(connect: Any) -> tuple[Any, str]:
    """A client whose engine answered a ping, or None and why not."""
    if connect is None:
        from lifecycle.buildcontainer.executor import connect
    try:
        # A short timeout for the question; the client that runs commands waits longer.
        connect(timeout=_PROBE_TIMEOUT).ping()
        return connect(), ""
    except Exception as exc:  # any failure to reach the engine means "no engine"
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"


def _image_id(client: Any, image: BuildImage, log: logging.Logger) -> str:
    """The engine's id of the build image, loading it from the local store when missing."""
    import docker.errors

    try:
        return str(client.images.get(image.name).id)
    except docker.errors.ImageNotFound as exc:
        if image.provide is None:
            raise BaseImageNotFound(f"failed to find build image {image.name} ({image.source}) "
                                    "in the Docker engine",
                                    hint="load it into the engine, or use --executor "
                                         "local") from exc
    from lifecycle.image import reference, transports

    log.info("loading build image %s into the Docker engine", image.name)
    transports.write_image(image.provide(), reference.parse(f"docker-daemon:{image.name}"),
                           progress=log.debug)
    return str(client.images.get(image.name).id)
