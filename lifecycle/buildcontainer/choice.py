"""``--executor auto|docker|local``: which executor runs the build's commands, and why.

``auto`` takes ``docker`` when the stack has a build image and a Docker engine answers, else
``local``; the reason is printed either way. The choice (with the build image's id) is also
the key that keeps layers made by one executor from being reused by another.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lifecycle.cache.layers import LOCAL_EXECUTOR
from lifecycle.errors import BaseImageNotFound, BuildError, UsageError

EXECUTORS = ("auto", "docker", "local")
BUILD_IMAGE_ENV = "HYBRIDLESS_BUILD_IMAGE"
"""Names an image already in the Docker engine to build in when no stack gives one."""
_PROBE_TIMEOUT = 5


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


def build_image_of(stack_build_image: str | None, environ: Mapping[str, str] | None = None
                   ) -> tuple[str | None, str]:
    """The engine image to build in and where that came from (the stack, or the variable)."""
    environ = os.environ if environ is None else environ
    named = environ.get(BUILD_IMAGE_ENV, "").strip()
    if named:
        return named, f"${BUILD_IMAGE_ENV}"
    if stack_build_image:
        return stack_build_image, "the stack's build image"
    return None, "no stack build image"


def choose(requested: str, image: str | None, source: str, log: logging.Logger,
           connect: Any = None) -> tuple[ExecutorChoice, Any]:
    """Pick the executor; returns the choice and a docker client when it is ``docker``.

    ``connect`` makes the client (the SDK's, by default); it is a parameter so the bench can
    count engine calls.
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
                f"({source})", hint=f"build on a stack that has a build image, set "
                                    f"{BUILD_IMAGE_ENV}=IMAGE, or use --executor local")
        return _local(f"auto: {source}", log), None
    client, problem = _engine(connect)
    if client is None:
        if requested == "docker":
            raise BuildError(f"failed to use --executor docker: the Docker engine does not "
                             f"answer ({problem})",
                             hint="start the engine (`docker info`), or use --executor local")
        return _local(f"auto: the Docker engine does not answer ({problem})", log), None
    image_id = _image_id(client, image, source)
    why = "--executor docker" if requested == "docker" else "auto: the Docker engine answers"
    choice = ExecutorChoice("docker", f"{why}; build image {image} from {source}", image,
                            image_id)
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
    except Exception as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"


def _image_id(client: Any, image: str, source: str) -> str:
    import docker.errors

    try:
        return str(client.images.get(image).id)
    except docker.errors.ImageNotFound as exc:
        raise BaseImageNotFound(f"failed to find build image {image} ({source}) in the Docker "
                                "engine", hint="load it into the engine, or use --executor "
                                               "local") from exc
