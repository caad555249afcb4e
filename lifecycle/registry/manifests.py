"""Manifests as the registry serves them: exact bytes, media type, digest; and platforms."""

from __future__ import annotations

import hashlib
import json
import platform as host
import re
from dataclasses import dataclass
from typing import Any

from lifecycle.errors import RegistryError, UsageError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
# Distribution needs an Accept header, and serves schema 1 to clients that send none.
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")

_MACHINES = {
    "x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
    "i686": ("386", ""), "i386": ("386", ""), "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""), "riscv64": ("riscv64", ""),
}


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a manifest says about one blob or child manifest."""

    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class Platform:
    """``os/arch[/variant]``, as ``--platform`` spells it."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]`` or raise a usage error."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise UsageError(
                f"failed to parse platform {text!r}: write OS/ARCH[/VARIANT]",
                hint="e.g. linux/amd64 or linux/arm64/v8",
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    def matches(self, entry: dict[str, Any]) -> bool:
        """Whether an index entry's ``platform`` object is this platform."""
        if entry.get("os") != self.os or entry.get("architecture") != self.architecture:
            return False
        if not self.variant:
            return True
        # arm64 images rarely say v8; docker treats a missing variant as the default one.
        default = "v8" if self.architecture == "arm64" else ""
        return (entry.get("variant") or default) == self.variant

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


def host_platform() -> Platform:
    """The platform docker would pick on this machine: linux and its CPU architecture."""
    arch, variant = _MACHINES.get(host.machine().lower(), (host.machine().lower(), ""))
    return Platform("linux", arch, variant)


@dataclass(frozen=True)
class Manifest:
    """A manifest or index exactly as served, with its media type and digest."""

    data: bytes
    media_type: str
    digest: str

    @classmethod
    def of(cls, data: bytes, media_type: str | None = None) -> Manifest:
        """Wrap ``data``; the media type comes from the document when not given."""
        kind = media_type
        if not kind:
            document = _document(data, "manifest")
            # mediaType is optional in OCI documents: what they hold says what they are.
            kind = document.get("mediaType") or (
                OCI_INDEX if "manifests" in document else OCI_MANIFEST)
        if not isinstance(kind, str):
            raise RegistryError("failed to read a manifest: its mediaType is not a string")
        return cls(data, kind, sha256_digest(data))

    @property
    def is_index(self) -> bool:
        """Whether this is an OCI index or a Docker manifest list."""
        return self.media_type in INDEX_TYPES

    @property
    def descriptor(self) -> Descriptor:
        """A descriptor pointing at this manifest."""
        return Descriptor(self.media_type, self.digest, len(self.data))

    def config(self) -> Descriptor:
        """The config blob of an image manifest."""
        return _descriptor(_document(self.data, self.digest).get("config"), self.digest)

    def layers(self) -> tuple[Descriptor, ...]:
        """The layer blobs of an image manifest, in order."""
        layers = _document(self.data, self.digest).get("layers")
        if not isinstance(layers, list):
            raise RegistryError(f"failed to read manifest {self.digest}: it has no layers list")
        return tuple(_descriptor(layer, self.digest) for layer in layers)

    def children(self) -> tuple[tuple[Descriptor, Platform | None], ...]:
        """The manifests an index lists, with their platforms."""
        entries = _document(self.data, self.digest).get("manifests")
        if not isinstance(entries, list):
            raise RegistryError(f"failed to read index {self.digest}: it has no manifests list")
        out: list[tuple[Descriptor, Platform | None]] = []
        for entry in entries:
            wanted = entry.get("platform") if isinstance(entry, dict) else None
            found = (Platform(str(wanted.get("os", "")), str(wanted.get("architecture", "")),
                              str(wanted.get("variant", "")))
                     if isinstance(wanted, dict) else None)
            out.append((_descriptor(entry, self.digest), found))
        return tuple(out)

    def choose(self, wanted: Platform) -> Descriptor | None:
        """The child manifest for ``wanted``, else None."""
        entries = _document(self.data, self.digest).get("manifests") or []
        for entry in entries:
            if isinstance(entry, dict) and wanted.matches(entry.get("platform") or {}):
                return _descriptor(entry, self.digest)
        return None


def _document(data: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except ValueError as error:
        raise RegistryError(f"failed to read {what}: it is not JSON ({error})") from error
    if not isinstance(document, dict):
        raise RegistryError(f"failed to read {what}: it is not a JSON object")
    return document


def _descriptor(entry: object, where: str) -> Descriptor:
    if not isinstance(entry, dict):
        raise RegistryError(f"failed to read manifest {where}: a descriptor is not an object")
    media_type, digest, size = entry.get("mediaType"), entry.get("digest"), entry.get("size")
    valid_size = isinstance(size, int) and not isinstance(size, bool) and size >= 0
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest) or not valid_size:
        raise RegistryError(
            f"failed to read manifest {where}: a descriptor has no valid digest and size")
    return Descriptor(str(media_type or ""), digest, int(size))  # type: ignore[arg-type]
