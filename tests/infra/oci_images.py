"""Registry test helpers: small OCI layouts written by hand, docker configs, the access log.

Independent of ``lifecycle.image`` on purpose: they check the registry client, and the
benchmark uses them to make its image.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lifecycle.registry.manifests import OCI_INDEX, OCI_MANIFEST, Descriptor, Manifest
from lifecycle.registry.transport import RetryPolicy
from tests.infra.services import Registry

# Short waits: the tests inject many faults and must not sleep through real backoff.
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.2, budget=5.0)
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True)
class LocalImage:
    """An image in an OCI layout written by these helpers (independent of lifecycle.image)."""

    layout: Path
    tag: str
    manifest: Manifest
    layers: tuple[Descriptor, ...]

    @property
    def ref(self) -> str:
        """The layout as a skopeo/containers reference."""
        return f"oci:{self.layout}:{self.tag}"

    def open(self, digest: str) -> IO[bytes]:
        """Open a blob by digest."""
        return (self.layout / "blobs" / "sha256" / digest.partition(":")[2]).open("rb")


def layer_bytes(files: Mapping[str, bytes]) -> bytes:
    """A gzip'd tar holding ``files``, with fixed times so it is reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _put(layout: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest[7:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def image_manifest(
    layout: Path, layers: list[bytes], *, arch: str = "amd64", label: str = ""
) -> tuple[Manifest, tuple[Descriptor, ...]]:
    """Write ``layers`` (already gzip'd) and a config into ``layout``; return the manifest."""
    diff_ids = ["sha256:" + hashlib.sha256(gzip.decompress(b)).hexdigest() for b in layers]
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Labels": {"test": label}, "Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }, sort_keys=True).encode()
    descriptors = tuple(Descriptor(LAYER, _put(layout, b), len(b)) for b in layers)
    document = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, "digest": _put(layout, config), "size": len(config)},
        "layers": [{"mediaType": d.media_type, "digest": d.digest, "size": d.size}
                   for d in descriptors],
    }
    data = json.dumps(document, indent=2).encode()
    _put(layout, data)
    return Manifest(data, OCI_MANIFEST, "sha256:" + hashlib.sha256(data).hexdigest()), descriptors


def write_layout(layout: Path, tag: str, manifest: Manifest, platform: str | None = None) -> None:
    """Write ``oci-layout`` and ``index.json`` naming ``manifest`` as ``tag``."""
    entry: dict[str, object] = {
        "mediaType": manifest.media_type, "digest": manifest.digest, "size": len(manifest.data),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    if platform:
        os_name, _, arch = platform.partition("/")
        entry["platform"] = {"os": os_name, "architecture": arch}
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}))


def make_image(
    layout: Path, *, sizes: tuple[int, ...] = (2048, 4096), seed: str = "a", tag: str = "v1"
) -> LocalImage:
    """An image whose layers hold pseudo-random files of ``sizes`` (distinct per ``seed``)."""
    layout.mkdir(parents=True, exist_ok=True)
    layers = []
    for index, size in enumerate(sizes):
        data = _noise(f"{seed}-{index}", size)
        layers.append(layer_bytes({f"layer{index}/data.bin": data}))
    manifest, descriptors = image_manifest(layout, layers, label=seed)
    write_layout(layout, tag, manifest)
    return LocalImage(layout, tag, manifest, descriptors)


def _noise(seed: str, size: int) -> bytes:
    """Incompressible bytes, so layer sizes are what the test asks for."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha512(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def docker_config(directory: Path, document: Mapping[str, object]) -> dict[str, str]:
    """Write a docker ``config.json`` under ``directory``; return the environment naming it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(document))
    return {"DOCKER_CONFIG": str(directory), "PATH": os.environ.get("PATH", "")}


def basic_auths(registry: Registry) -> dict[str, object]:
    """A config.json ``auths`` document with the registry's user and password."""
    import base64

    encoded = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    return {"auths": {registry.host: {"auth": encoded}}}


class AccessLog:
    """The registry's own access log, read from a mark: what the registry really served."""

    _LINE = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')

    def __init__(self, registry: Registry) -> None:
        self.path = registry.log
        self.mark = self.path.stat().st_size

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request since the mark."""
        with self.path.open("rb") as log:
            log.seek(self.mark)
            text = log.read().decode(errors="replace")
        return [(m.group(1), m.group(2), int(m.group(3))) for m in self._LINE.finditer(text)]

    def count(self, method: str, pattern: str) -> int:
        """How many requests since the mark had ``method`` and a path matching ``pattern``."""
        return sum(1 for m, p, _ in self.requests() if m == method and re.search(pattern, p))


def flip(path: Path, offset: int, *, mask: int = 0xFF, keep_mtime: bool = True) -> None:
    """Flip bits of one byte of a read-only blob in place (``mask``), as bit rot does,
    putting the mtime back unless told not to."""
    before = path.stat()
    path.chmod(0o644)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ mask]))
    path.chmod(0o444)
    if keep_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
