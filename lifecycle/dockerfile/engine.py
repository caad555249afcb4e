"""The Docker engine's part of a Dockerfile build, through the docker SDK's low-level API.

Four steps: load our image (extend mode) through the ``docker-daemon:`` sink, pull the
``FROM`` images the engine lacks with our registry client, build (streaming the log and
checking every message of it for an error), and save the result as a stream from which only
the layers we lack are spooled to disk.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import tarfile
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from lifecycle import jsonutil
from lifecycle.errors import BaseImageNotFound, DockerfileBuildFailed, InvalidReference
from lifecycle.image import reference, transports
from lifecycle.image.image import Image
from lifecycle.phases.label import RunImage

if TYPE_CHECKING:
    import docker

LAST_LINES = 15
"""Lines of the failing step's output repeated with the error."""
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ENGINE_NOTES = (" ---> ", "Removing intermediate container")


def connect() -> docker.APIClient:
    """A low-level client to the engine ``DOCKER_HOST`` names (else the local socket)."""
    import docker
    import docker.errors

    try:
        client = docker.from_env(use_ssh_client=False).api
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        raise DockerfileBuildFailed(
            f"failed to reach the Docker engine to build the Dockerfile: {exc}",
            hint="start the engine (or set DOCKER_HOST) and make its socket readable") from exc
    return client


def platform(api: docker.APIClient) -> str:
    """The engine's own platform, ``os/arch`` as OCI spells it."""
    version = api.version()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(version.get("Arch", ""),
                                                       version.get("Arch", ""))
    return f"{version.get('Os', 'linux')}/{arch}"


def load(image: Image, name: str) -> None:
    """Load ``image`` into the engine as ``name`` through our ``docker-daemon:`` sink.

    The sink streams the archive and leaves out the layers the engine already has, so a
    base the engine holds costs only the buildpacks' layers.
    """
    transports.write_image(image, reference.parse(f"docker-daemon:{name}"))


def ensure_present(api: docker.APIClient, images: Sequence[str], *, platform: str,
                   registry: Any, log: logging.Logger) -> None:
    """Pull every ``FROM`` image the engine lacks with our registry client, and load it.

    The engine's own pull is never used: it cannot reach registries that only our client can
    (mirrors, ``registries.toml``, credentials helpers), nor air-gapped sites' mirrors.
    """
    import docker.errors

    for name in images:
        try:
            api.inspect_image(name)
            continue
        except docker.errors.ImageNotFound:
            pass
        if "@" in name:
            raise BaseImageNotFound(
                f"failed to find the Dockerfile's FROM image {name} in the Docker engine",
                hint="the engine cannot be given an image by digest: load it first, or name "
                     "it by tag in the Dockerfile")
        try:
            source = reference.parse(f"docker://{name}")
        except InvalidReference as exc:
            raise BaseImageNotFound(
                f"failed to find the Dockerfile's FROM image {name} in the Docker engine, "
                f"and it is no registry reference: {exc.message}",
                hint="load it into the engine first") from None
        started = time.monotonic()
        pulled = transports.read_image(source, platform=platform, registry=registry)
        transports.write_image(pulled, reference.parse(f"docker-daemon:{name}"))
        log.info("pulled the FROM image %s with our registry client and loaded it into the "
                 "engine (%.1f s)", name, time.monotonic() - started)


def describe(api: docker.APIClient, name: str) -> RunImage:
    """The ``FROM`` image of a container-mode build, as the build label records a base.

    The engine knows an image by its id (the config's digest) and, when it was pulled or
    pushed, a registry digest; the label takes the registry digest when there is one.
    """
    found = api.inspect_image(name)
    diff_ids = found.get("RootFS", {}).get("Layers") or []
    repo_digests = found.get("RepoDigests") or []
    digest = str(repo_digests[0]).rpartition("@")[2] if repo_digests else str(found.get("Id"))
    return RunImage(name, digest, len(diff_ids), diff_ids[-1] if diff_ids else None)


@dataclass(frozen=True)
class Step:
    """Where the build was when it failed: ``Step N/M : INSTRUCTION`` and its last lines."""

    title: str
    lines: tuple[str, ...]


def build(api: docker.APIClient, context: Iterable[bytes], *, dockerfile: str,
          build_args: Mapping[str, str], tag: str, log: logging.Logger) -> str:
    """Build and return the image id; the log goes to ``log`` as it comes."""
    import docker.errors

    title = "before the first step"
    recent: deque[str] = deque(maxlen=LAST_LINES)
    image_id = None
    try:
        stream = api.build(
            fileobj=_Stream(iter(context)), custom_context=True, dockerfile=dockerfile,
            buildargs=dict(build_args), tag=tag, rm=True, forcerm=True, pull=False,
            decode=True, use_config_proxy=False)
        for message in stream:
            if not isinstance(message, dict):
                continue
            if "error" in message or "errorDetail" in message:
                detail = message.get("errorDetail") or {}
                error = str(message.get("error") or detail.get("message") or "unknown error")
                _fail(dockerfile, Step(title, tuple(recent)), error, log)
            # The engine colours a step's stderr with ANSI escapes; they are noise here.
            text = _ANSI.sub("", str(message.get("stream") or ""))
            for line in text.splitlines():
                if not line.strip():
                    continue
                if line.startswith("Step "):
                    title = line.strip()
                    recent.clear()
                elif not line.startswith(_ENGINE_NOTES):
                    recent.append(line.rstrip())
                log.info("%s", line.rstrip())
            aux = message.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
    except docker.errors.APIError as exc:
        _fail(dockerfile, Step(title, tuple(recent)), str(exc.explanation or exc), log)
    if image_id is None:
        _fail(dockerfile, Step(title, tuple(recent)), "the engine reported no image id", log)
    return image_id


def _fail(dockerfile: str, step: Step, error: str, log: logging.Logger) -> NoReturn:
    if step.lines:
        log.error("last lines of %s:\n  %s", step.title, "\n  ".join(step.lines))
    raise DockerfileBuildFailed(
        f"failed to build {dockerfile}: {step.title}: {error.strip()}",
        hint="fix that step; its last output lines are above")


class _Stream(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (what the SDK's build sends)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        """Always: this is a source."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the next chunks; 0 at the end."""
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


@dataclass(frozen=True)
class Saved:
    """An image saved from the engine: its config and the layers spooled to disk, by DiffID."""

    config_bytes: bytes
    layer_files: Mapping[str, Path]


def save(api: docker.APIClient, image_id: str, *, known: set[str], workdir: Path) -> Saved:
    """Stream ``docker save`` of ``image_id``; spool the layers whose DiffID is not ``known``."""
    workdir.mkdir(parents=True, exist_ok=True)
    chunks = api.get_image(image_id, chunk_size=1 << 20)
    config: bytes | None = None
    files: dict[str, Path] = {}
    want = image_id.removeprefix("sha256:")
    with tarfile.open(fileobj=io.BufferedReader(_Stream(iter(chunks)), 1 << 20),
                      mode="r|") as archive:
        for member in archive:
            name = member.name.lstrip("./")
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            if name == f"{want}.json" or name == f"blobs/sha256/{want}":
                config = handle.read()
            elif name.endswith("/layer.tar") or name.startswith("blobs/sha256/"):
                diff_id, path = _spool(handle, workdir)
                if diff_id in known or diff_id in files:
                    path.unlink()
                else:
                    files[diff_id] = path
    if config is None:
        raise DockerfileBuildFailed(f"failed to save the built image {image_id} from the "
                                    "engine: its config is missing from the stream")
    diff_ids = jsonutil.loads(config).get("rootfs", {}).get("diff_ids") or []
    missing = [d for d in diff_ids if d not in known and d not in files]
    if missing:
        raise DockerfileBuildFailed(f"failed to save the built image {image_id}: layers "
                                    f"{', '.join(missing)} are missing from the stream")
    return Saved(config, files)


def _spool(handle: Any, workdir: Path) -> tuple[str, Path]:
    """Copy a layer tar to a file while hashing it; its sha256 is the layer's DiffID."""
    hasher = hashlib.sha256()
    path = workdir / f"layer-{len(list(workdir.iterdir()))}.tar"
    with path.open("wb") as out:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
            out.write(chunk)
    return f"sha256:{hasher.hexdigest()}", path


def remove(api: docker.APIClient, name: str) -> None:
    """Untag ``name`` in the engine; layers other images use stay."""
    import docker.errors

    try:
        api.remove_image(name, noprune=False)
    except docker.errors.APIError:
        pass  # still used by a container, or already gone: it only costs the engine's disk
