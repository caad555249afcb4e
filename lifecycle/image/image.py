"""The image model: immutable ``Image`` and ``Layer`` values and pure functions over them.

An image is its config document (kept as bytes, so nobody can mutate it and its digest is
stable) and a tuple of layers; the manifest is derived from them. Functions such as
``append_layers`` return new images and never touch their argument.

Images read from a source keep the exact manifest and config bytes they were read with, so
re-exporting an unmodified base keeps its digest. Any derived image is re-serialised as
canonical JSON under OCI media types (Docker layer media types are mapped to their OCI
equivalents; the blobs are the same bytes).
"""

from __future__ import annotations

import datetime
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from lifecycle import jsonutil
from lifecycle.errors import BaseImageFetchError
from lifecycle.image.blobs import digest_of, hex_of

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
_OCI_LAYER_TYPE = {
    DOCKER_LAYER: OCI_LAYER,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    OCI_LAYER: OCI_LAYER,
    OCI_LAYER_GZIP: OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD: OCI_LAYER_ZSTD,
}

DEFAULT_CREATED = "1980-01-01T00:00:01Z"
"""docs/reference.md §4: the image's ``created`` unless ``SOURCE_DATE_EPOCH`` says otherwise."""


class BlobSource(Protocol):
    """Where a layer's bytes come from."""

    def open(self, digest: str) -> BinaryIO:
        """Open the blob for reading."""
        ...

    def local_path(self, digest: str) -> Path | None:
        """The blob as a local file (so sinks can link or copy it), or ``None``."""
        ...


@dataclass(frozen=True)
class DirectorySource:
    """Blobs stored as ``<directory>/<hex>``, the way the layer writer leaves them."""

    directory: Path

    def open(self, digest: str) -> BinaryIO:
        """Open the blob for reading."""
        return open(self.directory / hex_of(digest), "rb")

    def local_path(self, digest: str) -> Path | None:
        """The blob's file when it exists."""
        path = self.directory / hex_of(digest)
        return path if path.is_file() else None


@dataclass(frozen=True)
class BytesSource:
    """Blobs held in memory, keyed by digest; for small layers and tests."""

    blobs: Mapping[str, bytes]

    @classmethod
    def of(cls, *contents: bytes) -> BytesSource:
        """A source holding each of ``contents`` under its digest."""
        return cls({digest_of(data): data for data in contents})

    def open(self, digest: str) -> BinaryIO:
        """Open the blob for reading."""
        return io.BytesIO(self.blobs[digest])

    def local_path(self, digest: str) -> Path | None:
        """Always ``None``: the bytes live in memory."""
        return None


@dataclass(frozen=True)
class Layer:
    """One layer: its compressed blob's digest and size, its DiffID and where to read it."""

    digest: str
    diff_id: str
    size: int
    media_type: str = OCI_LAYER_GZIP
    source: BlobSource | None = field(default=None, compare=False, repr=False)

    def open(self) -> BinaryIO:
        """Open the layer blob; ``LookupError`` when the layer has no source."""
        if self.source is None:
            raise LookupError(f"layer {self.digest} has no source to read it from")
        return self.source.open(self.digest)

    def local_path(self) -> Path | None:
        """The layer blob as a local file, when its source has one."""
        return self.source.local_path(self.digest) if self.source is not None else None

    def descriptor(self) -> dict[str, Any]:
        """The layer's OCI descriptor, media type mapped to its OCI equivalent."""
        return {
            "mediaType": _OCI_LAYER_TYPE.get(self.media_type, self.media_type),
            "digest": self.digest,
            "size": self.size,
        }


@dataclass(frozen=True)
class Image:
    """An image: config bytes plus layers; the manifest and digests derive from them."""

    config_bytes: bytes
    layers: tuple[Layer, ...] = ()
    raw_manifest: bytes | None = field(default=None, repr=False)
    """The manifest exactly as read from a source; ``None`` for derived images."""

    def __post_init__(self) -> None:
        diff_ids = self.config.get("rootfs", {}).get("diff_ids", [])
        if list(diff_ids) != [layer.diff_id for layer in self.layers]:
            raise ValueError(
                f"config rootfs.diff_ids {diff_ids} do not match the layers' "
                f"{[layer.diff_id for layer in self.layers]}"
            )

    @property
    def config(self) -> dict[str, Any]:
        """A fresh copy of the config document: changing it changes nothing here."""
        value: dict[str, Any] = jsonutil.loads(self.config_bytes)
        return value

    @property
    def config_digest(self) -> str:
        """Digest of the config blob."""
        return digest_of(self.config_bytes)

    @property
    def config_media_type(self) -> str:
        """Media type of the config blob."""
        if self.raw_manifest is not None:
            media_type: str = jsonutil.loads(self.raw_manifest)["config"]["mediaType"]
            return media_type
        return OCI_CONFIG

    @property
    def manifest_bytes(self) -> bytes:
        """The image manifest: as read for unmodified images, else canonical OCI JSON."""
        if self.raw_manifest is not None:
            return self.raw_manifest
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": self.config_digest,
                "size": len(self.config_bytes),
            },
            "layers": [layer.descriptor() for layer in self.layers],
        }
        return jsonutil.dumps(manifest)

    @property
    def manifest_media_type(self) -> str:
        """Media type of the manifest (OCI unless read as a Docker manifest)."""
        if self.raw_manifest is not None:
            return _manifest_type(jsonutil.loads(self.raw_manifest))
        return OCI_MANIFEST

    @property
    def digest(self) -> str:
        """The image's identity: the digest of its manifest."""
        return digest_of(self.manifest_bytes)

    @property
    def size(self) -> int:
        """Bytes of manifest, config and layer blobs together."""
        return (
            len(self.manifest_bytes)
            + len(self.config_bytes)
            + sum(layer.size for layer in self.layers)
        )

    @property
    def created(self) -> str:
        """The config's ``created`` time, as written."""
        return str(self.config.get("created", ""))

    @property
    def platform(self) -> str:
        """``os/architecture[/variant]`` from the config."""
        config = self.config
        parts = [str(config.get("os", "")), str(config.get("architecture", ""))]
        if config.get("variant"):
            parts.append(str(config["variant"]))
        return "/".join(parts)

    @property
    def env(self) -> dict[str, str]:
        """The config's environment as a mapping (later duplicates win, as at run time)."""
        return dict(_split_env(self.config.get("config", {}).get("Env") or []))

    @property
    def labels(self) -> dict[str, str]:
        """The config's labels."""
        return dict(self.config.get("config", {}).get("Labels") or {})


def empty(os: str = "linux", architecture: str = "amd64", *, variant: str | None = None) -> Image:
    """An image with no layers and an empty runtime config, created at ``DEFAULT_CREATED``."""
    config: dict[str, Any] = {
        "architecture": architecture,
        "os": os,
        "created": DEFAULT_CREATED,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }
    if variant:
        config["variant"] = variant
    return Image(jsonutil.dumps(config))


def created_from_epoch(epoch: int) -> str:
    """RFC 3339 UTC time for a ``SOURCE_DATE_EPOCH`` value."""
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def append_layers(
    image: Image, layers: Sequence[Layer], history: Sequence[str] | None = None
) -> Image:
    """A new image with ``layers`` on top; ``history[i]`` is the ``created_by`` of layer i.

    ``rootfs.diff_ids`` and ``history`` stay aligned: when the image's own history does not
    have one non-empty entry per layer, it is replaced by one plain entry per layer.
    """
    if history is not None and len(history) != len(layers):
        raise ValueError(f"{len(history)} history entries given for {len(layers)} layers")
    config = image.config
    created = config.get("created", DEFAULT_CREATED)
    entries = _aligned_history(config, len(image.layers), created)
    for index in range(len(layers)):
        entry: dict[str, Any] = {"created": created}
        if history is not None:
            entry["created_by"] = history[index]
        entries.append(entry)
    all_layers = (*image.layers, *layers)
    config["history"] = entries
    config["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id for layer in all_layers]}
    return Image(jsonutil.dumps(config), all_layers)


_RUNTIME_FIELDS = {
    "env": "Env",
    "entrypoint": "Entrypoint",
    "cmd": "Cmd",
    "working_dir": "WorkingDir",
    "user": "User",
    "labels": "Labels",
    "exposed_ports": "ExposedPorts",
    "volumes": "Volumes",
    "stop_signal": "StopSignal",
}
_TOP_FIELDS = {
    "created": "created",
    "os": "os",
    "architecture": "architecture",
    "variant": "variant",
    "author": "author",
}


def with_config(image: Image, **changes: Any) -> Image:
    """A new image whose config has ``changes`` applied; a value of ``None`` removes the field.

    Keys: env (mapping or ``K=V`` list; replaces the whole list), entrypoint, cmd (lists),
    working_dir, user, stop_signal (strings), labels (mapping; replaces all labels),
    exposed_ports, volumes (iterables of keys), created, os, architecture, variant, author.
    """
    unknown = sorted(set(changes) - set(_RUNTIME_FIELDS) - set(_TOP_FIELDS))
    if unknown:
        valid = ", ".join(sorted({*_RUNTIME_FIELDS, *_TOP_FIELDS}))
        raise TypeError(f"with_config() got unknown fields {unknown}; valid fields: {valid}")
    config = image.config
    runtime = dict(config.get("config") or {})
    for key, value in changes.items():
        if key in _RUNTIME_FIELDS:
            target, name = runtime, _RUNTIME_FIELDS[key]
        else:
            target, name = config, _TOP_FIELDS[key]
        if value is None:
            target.pop(name, None)
        else:
            target[name] = _normalise(key, value)
    config["config"] = runtime
    return Image(jsonutil.dumps(config), image.layers)


def replace_base(image: Image, old_base_layer_count: int, new_base: Image) -> Image:
    """Rebase: swap the bottom ``old_base_layer_count`` layers for ``new_base``'s layers.

    Only the manifest and config are rewritten. The image keeps its own runtime config
    (Entrypoint, Cmd, WorkingDir, User, Labels, Env, created); os, architecture, variant and
    os.version come from the new base; Env variables the new base sets and the image does not
    are added (the image's values win, as they already include what the old base set). History
    becomes the new base's history followed by the image's entries above the old base.
    """
    if not 0 <= old_base_layer_count <= len(image.layers):
        raise ValueError(
            f"the image has {len(image.layers)} layers; cannot replace {old_base_layer_count}"
        )
    config = image.config
    base_config = new_base.config
    created = config.get("created", DEFAULT_CREATED)
    upper = image.layers[old_base_layer_count:]
    own_history = _aligned_history(config, len(image.layers), created)
    split = _history_split(own_history, old_base_layer_count)
    base_history = _aligned_history(
        base_config, len(new_base.layers), base_config.get("created", created)
    )
    config["history"] = base_history + own_history[split:]
    layers = (*new_base.layers, *upper)
    config["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}
    for key in ("os", "architecture", "variant", "os.version", "os.features"):
        if key in base_config:
            config[key] = base_config[key]
        else:
            config.pop(key, None)
    runtime = dict(config.get("config") or {})
    env = list(runtime.get("Env") or [])
    present = {name for name, _ in _split_env(env)}
    for name, value in _split_env(base_config.get("config", {}).get("Env") or []):
        if name not in present:
            env.append(f"{name}={value}")
            present.add(name)
    if env:
        runtime["Env"] = env
    config["config"] = runtime
    return Image(jsonutil.dumps(config), layers)


def from_manifest(manifest_bytes: bytes, config_bytes: bytes, source: BlobSource) -> Image:
    """The image a manifest describes, keeping both documents byte for byte.

    Accepts OCI and Docker schema 2 manifests; raises ``BaseImageFetchError`` when the
    documents are not a consistent single-platform image.
    """
    try:
        manifest = jsonutil.loads(manifest_bytes)
        config = jsonutil.loads(config_bytes)
    except ValueError as error:
        raise BaseImageFetchError(f"failed to read image: not JSON: {error}") from error
    if not isinstance(manifest, dict) or not isinstance(config, dict):
        raise BaseImageFetchError("failed to read image: manifest or config is not an object")
    media_type = _manifest_type(manifest)
    if media_type in INDEX_TYPES or "manifests" in manifest:
        raise BaseImageFetchError(
            "failed to read image: got an image index where an image manifest was expected"
        )
    if manifest.get("schemaVersion") != 2 or media_type not in MANIFEST_TYPES:
        raise BaseImageFetchError(
            f"failed to read image: unsupported manifest (schemaVersion "
            f"{manifest.get('schemaVersion')!r}, mediaType {media_type!r})"
        )
    problem = _shape_problem(manifest, config)
    if problem is not None:
        raise BaseImageFetchError(f"failed to read image: {problem}",
                                  hint="the image was written by a broken or hostile tool; "
                                       "use another run image")
    wanted = manifest.get("config", {}).get("digest")
    if wanted != digest_of(config_bytes):
        raise BaseImageFetchError(
            f"failed to read image: config digest {digest_of(config_bytes)} is not the "
            f"manifest's {wanted}"
        )
    descriptors = manifest.get("layers") or []
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(descriptors) != len(diff_ids):
        raise BaseImageFetchError(
            f"failed to read image: {len(descriptors)} layers but {len(diff_ids)} diff_ids"
        )
    layers = tuple(
        Layer(d["digest"], diff_id, int(d["size"]), d["mediaType"], source)
        for d, diff_id in zip(descriptors, diff_ids, strict=True)
    )
    for layer in layers:
        if layer.media_type not in _OCI_LAYER_TYPE:
            raise BaseImageFetchError(
                f"failed to read image: layer {layer.digest} has unsupported media type "
                f"{layer.media_type!r}"
            )
    return Image(config_bytes, layers, manifest_bytes)


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_STRING_LISTS = ("Env", "Entrypoint", "Cmd")
_STRINGS = ("User", "WorkingDir", "StopSignal")


def _shape_problem(manifest: Mapping[str, Any], config: Mapping[str, Any]) -> str | None:
    """What is wrongly typed in the fields this engine reads, or None.

    Checked once here so that the image model never meets ``"Env": 5`` or a layer digest
    such as ``sha256:../..``, which would name a path when the blob is looked up.
    """
    descriptor = manifest.get("config")
    if not isinstance(descriptor, dict) or not _is_digest(descriptor.get("digest")):
        return "manifest config is not a descriptor with a sha256 digest"
    layers = manifest.get("layers", [])
    if not isinstance(layers, list):
        return "manifest layers is not a list"
    for number, layer in enumerate(layers):
        where = f"manifest layers[{number}]"
        if not isinstance(layer, dict):
            return f"{where} is not an object"
        if not _is_digest(layer.get("digest")):
            return f"{where}.digest = {layer.get('digest')!r} is not sha256:<64 hex digits>"
        size = layer.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return f"{where}.size = {size!r} is not a byte count"
        if not isinstance(layer.get("mediaType"), str):
            return f"{where}.mediaType is not a string"
    rootfs = config.get("rootfs", {})
    diff_ids = rootfs.get("diff_ids", []) if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(_is_digest(d) for d in diff_ids):
        return "config rootfs.diff_ids is not a list of sha256 digests"
    history = config.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        return "config history is not a list of objects"
    inner = config.get("config", {})
    if inner is None:
        return None
    if not isinstance(inner, dict):
        return "config config is not an object"
    for key in _STRING_LISTS:
        value = inner.get(key)
        if value is not None and (not isinstance(value, list)
                                  or not all(isinstance(v, str) for v in value)):
            return f"config config.{key} is not a list of strings"
    for key in _STRINGS:
        if inner.get(key) is not None and not isinstance(inner[key], str):
            return f"config config.{key} is not a string"
    labels = inner.get("Labels")
    if labels is not None and (not isinstance(labels, dict)
                               or not all(isinstance(v, str) for v in labels.values())):
        return "config config.Labels is not an object of strings"
    return None


def _is_digest(value: Any) -> bool:
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def platform_matches(platform: Mapping[str, Any] | None, wanted: str) -> bool:
    """Whether an index entry's ``platform`` object matches ``os/arch[/variant]``."""
    if not platform:
        return False
    parts = wanted.split("/")
    if len(parts) < 2 or platform.get("os") != parts[0] or platform.get("architecture") != parts[1]:
        return False
    if len(parts) > 2:
        # arm64 images often omit their (only) variant; treat a missing one as v8.
        default = "v8" if parts[1] == "arm64" else None
        return platform.get("variant", default) == parts[2]
    return True


def _manifest_type(manifest: Mapping[str, Any]) -> str:
    media_type = manifest.get("mediaType")
    if media_type:
        return str(media_type)
    if "manifests" in manifest:
        return OCI_INDEX
    config_type = (manifest.get("config") or {}).get("mediaType")
    return DOCKER_MANIFEST if config_type == DOCKER_CONFIG else OCI_MANIFEST


def _aligned_history(config: Mapping[str, Any], layer_count: int, created: Any) -> list[Any]:
    history = list(config.get("history") or [])
    if sum(1 for entry in history if not entry.get("empty_layer")) == layer_count:
        return history
    return [{"created": created} for _ in range(layer_count)]


def _history_split(history: Sequence[Mapping[str, Any]], layer_count: int) -> int:
    if layer_count == 0:
        return 0
    seen = 0
    for index, entry in enumerate(history):
        if not entry.get("empty_layer"):
            seen += 1
            if seen == layer_count:
                return index + 1
    return len(history)


def _split_env(env: Iterable[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in env:
        name, _, value = item.partition("=")
        pairs.append((name, value))
    return pairs


def _normalise(key: str, value: Any) -> Any:
    if key == "env":
        if isinstance(value, Mapping):
            return [f"{k}={v}" for k, v in value.items()]
        return [str(item) for item in value]
    if key in ("entrypoint", "cmd"):
        if isinstance(value, str):
            raise TypeError(f"{key} must be a list of arguments, not the string {value!r}")
        return [str(item) for item in value]
    if key == "labels":
        return {str(k): str(v) for k, v in dict(value).items()}
    if key in ("exposed_ports", "volumes"):
        if isinstance(value, str):
            raise TypeError(f"{key} must be a collection, not the string {value!r}")
        return {str(item): {} for item in value}
    return value
