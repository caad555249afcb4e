"""The ``docker-daemon:NAME:TAG`` source and sink: the local Docker engine, via the docker SDK.

The sink streams a ``docker load`` archive to the engine as it is written, so no file of the
whole image is ever made, and reads the load's answer stream to the end: the engine reports
failures inside it (HTTP 200), so every message is checked for an error.

It also leaves out the layers the engine already has. Moby's loader (20.10 and later) looks up
each layer's chain (the layer with everything below it) in its layer store and opens the
layer's file only when that chain is missing, so a file the archive lists but does not hold
is never missed. Only whole chains from the bottom count: a layer the engine has on top of a
different base is sent again. The engine still receives the manifest, the config and every
missing layer, so a rebuilt app on a base the engine has costs only the app's layers.

The source asks the engine for ``docker save``'s archive and reads it as a
``docker-archive:`` (kept in a temporary directory for the life of the process, since layers
are read from it lazily).
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from lifecycle import jsonutil
from lifecycle.errors import BaseImageFetchError, BaseImageNotFound, ExportError, LifecycleError
from lifecycle.image.blobs import CHUNK, hex_of
from lifecycle.image.image import Image
from lifecycle.image.reference import Reference
from lifecycle.image.transports import docker_archive
from lifecycle.image.transports.oci_layout import Progress

FIXED_MTIME = 315532801  # 1980-01-01T00:00:01Z, as the archive sinks write
_RECORD = tarfile.RECORDSIZE


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The chain id of each layer: its DiffID with everything below it (OCI image spec)."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            text = f"{chains[-1]} {diff_id}".encode()
            chains.append(f"sha256:{hashlib.sha256(text).hexdigest()}")
    return chains


def write(image: Image, refs: Sequence[Reference], progress: Progress | None) -> str:
    """Load ``image`` into the engine under every NAME:TAG of ``refs``; return its digest."""
    client = _client("load an image into", ExportError)
    try:
        present = _engine_chains(client)
        chains = chain_ids([layer.diff_id for layer in image.layers])
        # Chains are prefix-closed: once one is missing, every chain above it is missing too.
        kept = 0
        while kept < len(chains) and chains[kept] in present:
            kept += 1
        sent = _Counter()
        stream = sent.count(_archive(image, [ref.store_name for ref in refs], skip=kept))
        answers = client.api.load_image(stream)
        loaded = _check_answers(answers, str(refs[0]))
    except ExportError:
        raise
    except Exception as error:  # the SDK raises its own and requests' errors
        raise ExportError(
            f"failed to load the image into the Docker engine as {refs[0]}: {error}",
            hint="check that the engine runs and this user may use it (docker info)",
        ) from error
    finally:
        client.close()
    if not loaded:
        raise ExportError(
            f"failed to load the image into the Docker engine as {refs[0]}: the engine "
            "answered without loading anything"
        )
    if progress is not None:
        progress(f"sent {sent.total} bytes to the Docker engine; {kept} of {len(chains)} "
                 "layers left out (the engine has them)")
    return image.digest


def read(ref: Reference, platform: str) -> Image:
    """Read ``docker-daemon:NAME:TAG`` from the engine (``docker save`` of that image)."""
    import docker.errors

    client = _client("read an image from", BaseImageFetchError)
    directory = Path(tempfile.mkdtemp(prefix="hybridless-daemon-"))
    atexit.register(shutil.rmtree, directory, True)
    archive = directory / "image.tar"
    try:
        with open(archive, "wb") as out:
            for chunk in client.api.get_image(ref.store_name):
                out.write(chunk)
    except docker.errors.NotFound as error:
        raise BaseImageNotFound(
            f"failed to read image {ref}: the Docker engine has no image {ref.store_name}",
            hint="list the engine's images with `docker images`",
        ) from error
    except docker.errors.DockerException as error:
        raise BaseImageFetchError(f"failed to read image {ref} from the Docker engine: "
                                  f"{error}") from error
    finally:
        client.close()
    return docker_archive.read(
        Reference("docker-archive", name=ref.name, tag=ref.tag_or_default, path=str(archive)),
        platform,
    )


_ENGINE_TIMEOUT = 900  # seconds for one engine API call


def _client(action: str, failure: type[LifecycleError]) -> Any:
    import docker

    try:
        # The SDK's 60 s default cuts off a load of a large image that the engine is still
        # unpacking (seen under load with a Debian base); loads and saves are long by nature.
        return docker.from_env(timeout=_ENGINE_TIMEOUT)
    except docker.errors.DockerException as error:
        raise failure(
            f"failed to {action} the Docker engine: {error}",
            hint="start the engine, or point DOCKER_HOST at it",
        ) from error


def _engine_chains(client: Any) -> set[str]:
    """Every layer chain of every image the engine holds."""
    found: set[str] = set()
    for summary in client.api.images():
        try:
            details = client.api.inspect_image(summary["Id"])
        except Exception:  # removed meanwhile: it just offers no layers
            continue
        found.update(chain_ids((details.get("RootFS") or {}).get("Layers") or []))
    return found


def _check_answers(answers: Iterable[Any], where: str) -> bool:
    """Read the whole load answer; raise on any error message; whether an image was loaded."""
    loaded = False
    for answer in answers:
        if not isinstance(answer, dict):
            continue
        error = answer.get("errorDetail") or answer.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else error
            raise ExportError(f"failed to load {where} into the Docker engine: {message}")
        if "Loaded image" in str(answer.get("stream", "")):
            loaded = True
    return loaded


def _archive(image: Image, names: Sequence[str], *, skip: int) -> Iterator[bytes]:
    """A ``docker load`` archive of ``image`` without the files of its bottom ``skip`` layers."""
    layer_paths = [f"blobs/sha256/{hex_of(layer.digest)}" for layer in image.layers]
    config_path = f"blobs/sha256/{hex_of(image.config_digest)}"
    manifest = [{"Config": config_path, "RepoTags": list(dict.fromkeys(names)),
                 "Layers": layer_paths}]
    yield from _member("manifest.json", jsonutil.dumps(manifest))
    yield from _member(config_path, image.config_bytes)
    written = {config_path}
    for layer, path in list(zip(image.layers, layer_paths, strict=True))[skip:]:
        if path in written:
            continue  # the same blob twice in one image
        written.add(path)
        with layer.open() as reader:
            yield from _stream_member(path, layer.size, reader)
    yield b"\0" * (2 * _RECORD)


def _member(name: str, data: bytes) -> Iterator[bytes]:
    yield _header(name, len(data))
    yield data + b"\0" * (-len(data) % 512)


def _stream_member(name: str, size: int, reader: BinaryIO) -> Iterator[bytes]:
    yield _header(name, size)
    remaining = size
    while remaining:
        chunk = reader.read(min(CHUNK, remaining))
        if not chunk:
            raise ExportError(f"failed to send {name}: its source ended {remaining} bytes early")
        remaining -= len(chunk)
        yield chunk
    yield b"\0" * (-size % 512)


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = FIXED_MTIME
    return info.tobuf(tarfile.USTAR_FORMAT)


class _Counter:
    """Counts the bytes a stream hands on (the measure of what a load sent)."""

    def __init__(self) -> None:
        self.total = 0

    def count(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.total += len(chunk)
            yield chunk

