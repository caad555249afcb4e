"""The build cache: layer directories, layer records and layer blobs, keyed by project identity.

Layout under the cache root (``$XDG_CACHE_HOME/hybridless`` or ``--cache-dir``)::

    blobs/sha256/<hex>                      layer blobs, shared by every project
    descriptors/<sha256>                    descriptors that passed the schema
    projects/<key>/lock                     one build of a project at a time
    projects/<key>/layers/<bp>/<name>/      a layer's files (kept for build or cache layers)
    projects/<key>/layers/<bp>/<name>.json  its record: flags, metadata and blob

Crash safety: a record is written (temp file, then rename) only after its blob is complete,
and it is deleted before its directory is touched. So after a kill at any moment, a layer
either has a complete record and blob, or no record and is rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle import paths
from lifecycle.errors import BuildError
from lifecycle.hookspecs import Layer
from lifecycle.image.blobs import BlobDir, write_atomic

RECORD_VERSION = 1


def default_root(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/hybridless``, else ``~/.cache/hybridless`` (docs/reference.md §2)."""
    return paths.cache_root(environ)


def project_key(project_id: str | None, app_dir: Path) -> str:
    """The descriptor's id keys the cache; without one, the app's absolute path does."""
    if project_id:
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in project_id)
        return f"id-{safe}"
    digest = hashlib.sha256(str(app_dir.resolve()).encode()).hexdigest()[:16]
    return f"path-{digest}"


def bp_dirname(buildpack_id: str) -> str:
    """``hybridless/nodejs`` → ``hybridless_nodejs`` (docs/reference.md §4)."""
    return buildpack_id.replace("/", "_")


@dataclass(frozen=True)
class BlobInfo:
    """Where a finished layer's bytes are, by digest."""

    digest: str
    diff_id: str
    size: int


@dataclass(frozen=True)
class LayerRecord:
    """What the cache remembers of one layer between builds."""

    buildpack: str
    name: str
    launch: bool
    build: bool
    cache: bool
    metadata: Mapping[str, Any]
    blob: BlobInfo | None = None

    def to_json(self) -> dict[str, Any]:
        """The record file's content."""
        return {"version": RECORD_VERSION, "buildpack": self.buildpack, "name": self.name,
                "launch": self.launch, "build": self.build, "cache": self.cache,
                "metadata": self.metadata,
                "blob": None if self.blob is None else self.blob.__dict__}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerRecord:
        """Parse a record file; raises KeyError/TypeError on a malformed one."""
        blob = data.get("blob")
        return cls(data["buildpack"], data["name"], bool(data["launch"]), bool(data["build"]),
                   bool(data["cache"]), data.get("metadata") or {},
                   BlobInfo(**blob) if blob else None)


def normalized(metadata: Mapping[str, Any]) -> Any:
    """Metadata as it compares after a JSON round trip (tuples become lists, and so on)."""
    return json.loads(json.dumps(metadata, sort_keys=True, default=str))


@dataclass
class ProjectCache:
    """One project's cache, locked for the duration of a build."""

    root: Path
    key: str
    blobs: BlobDir = field(init=False)
    declared: dict[tuple[str, str], Layer] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.blobs = BlobDir(paths.CacheLayout(self.root).blobs)
        self.blobs.directory.mkdir(parents=True, exist_ok=True)
        self.project_dir.mkdir(parents=True, exist_ok=True)

    @property
    def project_dir(self) -> Path:
        """``projects/<key>``."""
        return paths.CacheLayout(self.root).project(self.key)

    @contextlib.contextmanager
    def locked(self) -> Iterator[ProjectCache]:
        """Hold the project's lock: concurrent builds of one project take turns."""
        lock_path = self.project_dir / "lock"
        with open(lock_path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self.blobs.recover()
            try:
                yield self
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def layers_dir(self, buildpack_id: str) -> Path:
        """The directory holding one buildpack's layers."""
        path = self.project_dir / "layers" / bp_dirname(buildpack_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def record_path(self, buildpack_id: str, name: str) -> Path:
        """Where a layer's record lives."""
        return self.layers_dir(buildpack_id) / f"{name}.json"

    def read_record(self, buildpack_id: str, name: str) -> LayerRecord | None:
        """The previous build's record, or None when absent or unreadable."""
        try:
            return LayerRecord.from_json(json.loads(self.record_path(buildpack_id,
                                                                     name).read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def records(self, buildpack_id: str) -> dict[str, LayerRecord]:
        """All records of one buildpack from the previous build."""
        found = {}
        for path in sorted(self.layers_dir(buildpack_id).glob("*.json")):
            record = self.read_record(buildpack_id, path.stem)
            if record is not None:
                found[record.name] = record
        return found

    def write_record(self, record: LayerRecord) -> None:
        """Atomically replace a layer's record."""
        write_atomic(self.record_path(record.buildpack, record.name),
                     json.dumps(record.to_json(), sort_keys=True, indent=1).encode())

    def drop(self, buildpack_id: str, name: str) -> None:
        """Forget a layer: record first, then files (the crash-safe order)."""
        self.record_path(buildpack_id, name).unlink(missing_ok=True)
        shutil.rmtree(self.layers_dir(buildpack_id) / name, ignore_errors=True)

    # -- the LayerProvider protocol --------------------------------------------------------

    def layer(self, buildpack_id: str, name: str, *, metadata: Mapping[str, Any],
              launch: bool, build: bool, cache: bool) -> Layer:
        """Reuse the previous layer when its metadata and flags match, else start it empty."""
        if not name or "/" in name or name.startswith(".") or name.endswith(".json"):
            raise BuildError(f"failed to create layer {name!r} for '{buildpack_id}': "
                             "a layer name is one path component, not starting with '.'")
        if (buildpack_id, name) in self.declared:
            return self.declared[(buildpack_id, name)]
        path = self.layers_dir(buildpack_id) / name
        previous = self.read_record(buildpack_id, name)
        reusable = (
            previous is not None
            and normalized(previous.metadata) == normalized(metadata)
            and (previous.launch, previous.build, previous.cache) == (launch, build, cache)
            and (not launch or (previous.blob is not None
                                and self.blobs.has(previous.blob.digest)))
            and (not (build or cache) or path.is_dir())
        )
        if not reusable:
            self.drop(buildpack_id, name)
            path.mkdir(parents=True)
        handle = Layer(name=name, path=path,
                       image_path=f"/layers/{bp_dirname(buildpack_id)}/{name}",
                       launch=launch, build=build, cache=cache,
                       metadata=dict(metadata), reused=reusable)
        self.declared[(buildpack_id, name)] = handle
        return handle
