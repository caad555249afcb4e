"""The build cache: layer directories, layer records and layer blobs, keyed by project identity.

Layout under the cache root (``$XDG_CACHE_HOME/hybridless`` or ``--cache-dir``)::

    blobs/sha256/<hex>                      layer blobs, shared by every project
    blobs/stamps                            the blobs' ledger of checked stamps (image.blobs)
    descriptors/<sha256>                    descriptors that passed the schema
    projects/<key>/lock                     one build of a project at a time
    projects/<key>/layers/<bp>/<name>/      a layer's files (kept for build or cache layers)
    projects/<key>/layers/<bp>/<name>.json  its record: flags, metadata and blob

Crash safety: a record is written (temp file, then rename) only after its blob is complete,
and it is deleted before its directory is touched. So after a kill at any moment, a layer
either has a complete record and blob, or no record and is rebuilt.

Builds hold a shared ``flock`` on ``blobs/`` (beside their project's lock); ``collect`` (the
cache half of ``gc``) and ``verify`` take it exclusively, so they never remove a blob that a
running build wrote but has not recorded yet. ``collect`` keeps the blobs named by the latest
build of each project (its layer records and its app index) and removes the rest.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lifecycle import paths
from lifecycle.errors import BuildError
from lifecycle.hookspecs import Layer
from lifecycle.image.blobs import BlobDir, find_temps, recover_temps, write_atomic
from lifecycle.image.transports.store import GcReport  # one report for store and cache

RECORD_VERSION = 1
APP_INDEX = "app-index.json"
PACK_INDEX = "cache-index"
LOCAL_EXECUTOR = "local"


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
    executor: str = LOCAL_EXECUTOR
    origin: str | None = None
    """``HOST/REPO`` holding the blob when it was restored from a previous image and not
    fetched: the layer is reused by digest, and its bytes stay in that registry."""

    def to_json(self) -> dict[str, Any]:
        """The record file's content."""
        return {"version": RECORD_VERSION, "buildpack": self.buildpack, "name": self.name,
                "launch": self.launch, "build": self.build, "cache": self.cache,
                "metadata": self.metadata, "executor": self.executor,
                "blob": None if self.blob is None else self.blob.__dict__,
                **({"origin": self.origin} if self.origin is not None else {})}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerRecord:
        """Parse a record file; raises KeyError/TypeError on a malformed one."""
        blob = data.get("blob")
        return cls(data["buildpack"], data["name"], bool(data["launch"]), bool(data["build"]),
                   bool(data["cache"]), data.get("metadata") or {},
                   BlobInfo(**blob) if blob else None,
                   # Records older than the field were all made by the host executor.
                   str(data.get("executor") or LOCAL_EXECUTOR),
                   str(data["origin"]) if data.get("origin") else None)


def valid_layer_name(name: str) -> bool:
    """One path component, not hidden, not a record's name."""
    return bool(name) and "/" not in name and "\0" not in name and not name.startswith(".") \
        and not name.endswith(".json")


def normalized(metadata: Mapping[str, Any]) -> Any:
    """Metadata as it compares after a JSON round trip (tuples become lists, and so on)."""
    return json.loads(json.dumps(metadata, sort_keys=True, default=str))


@dataclass
class ProjectCache:
    """One project's cache, locked for the duration of a build."""

    root: Path
    key: str
    executor: str = LOCAL_EXECUTOR
    """What ran the commands: ``local``, or ``docker <build image id>``. A layer made by
    another executor (or in another build image) is never reused: what a command compiled or
    installed depends on the system it ran on."""
    blobs: BlobDir = field(init=False)
    declared: dict[tuple[str, str], Layer] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.blobs = cache_blobs(self.root)
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
        with open(lock_path, "a+b") as handle, blobs_locked(self.root, exclusive=False):
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
        path = self.record_path(record.buildpack, record.name)
        write_atomic(path, json.dumps(record.to_json(), sort_keys=True, indent=1).encode(),
                     durable=False)

    def drop(self, buildpack_id: str, name: str) -> None:
        """Forget a layer: record first, then files (the crash-safe order), then the stat
        index its cache image packing keeps (lifecycle.cache.cacheimage)."""
        self.record_path(buildpack_id, name).unlink(missing_ok=True)
        shutil.rmtree(self.layers_dir(buildpack_id) / name, ignore_errors=True)
        self.pack_index_path(buildpack_id, name).unlink(missing_ok=True)

    def pack_index_path(self, buildpack_id: str, name: str) -> Path:
        """Where the stat index of a cache layer's packed blob lives (cache.cacheimage)."""
        return self.project_dir / PACK_INDEX / bp_dirname(buildpack_id) / f"{name}.json"

    # -- the LayerProvider protocol --------------------------------------------------------

    def layer(self, buildpack_id: str, name: str, *, metadata: Mapping[str, Any],
              launch: bool, build: bool, cache: bool) -> Layer:
        """Reuse the previous layer when its metadata and flags match, else start it empty."""
        if not valid_layer_name(name):
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
            and previous.executor == self.executor
            and (not launch or (previous.blob is not None
                                and (self.blobs.has(previous.blob.digest)
                                     or previous.origin is not None)))
            and (not (build or cache) or path.is_dir())
        )
        if not reusable:
            self.drop(buildpack_id, name)
            path.mkdir(parents=True)
        else:
            # A launch-only layer keeps no files (its blob is enough), and one restored from a
            # previous image never had any: the buildpack gets an empty directory.
            path.mkdir(exist_ok=True)
        handle = Layer(name=name, path=path,
                       image_path=f"/layers/{bp_dirname(buildpack_id)}/{name}",
                       launch=launch, build=build, cache=cache,
                       metadata=dict(metadata), reused=reusable)
        self.declared[(buildpack_id, name)] = handle
        return handle


# -- collection and checks over the whole cache -------------------------------------------


def cache_blobs(root: Path) -> BlobDir:
    """The cache's blob directory, with its ledger of checked stamps."""
    blobs = paths.CacheLayout(root).blobs
    return BlobDir(blobs, blobs / "stamps")


@contextlib.contextmanager
def blobs_locked(root: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the cache's blob lock: shared for a build, exclusive for ``gc`` and ``verify``."""
    directory = root / "blobs"
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True)
class CacheVerifyReport:
    """What ``verify`` found in the build cache's blobs."""

    blobs: int
    """Blobs checked."""
    corrupt: tuple[str, ...]
    """Blobs whose content no longer matches their digest."""
    repaired: tuple[str, ...]
    """With ``--repair``: what was done, one readable line each."""

    @property
    def problems(self) -> tuple[str, ...]:
        """What is still wrong, one readable line each."""
        if self.repaired:
            return ()
        return tuple(f"cache blob {d} is corrupt: its content has another digest"
                     for d in self.corrupt)

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready mapping."""
        return {**asdict(self), "problems": list(self.problems)}


def used_blobs(root: Path) -> set[str]:
    """Digests the latest build of each project uses: its layer records and its app index."""
    used: set[str] = set()
    for project in _children(root / "projects"):
        for path in (project / "layers").glob("*/*.json"):
            try:
                record = LayerRecord.from_json(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a build treats it as absent and rebuilds the layer
            if record.blob is not None:
                used.add(record.blob.digest)
        try:
            index = json.loads((project / APP_INDEX).read_text())
            used.add(str(index["blob"]["digest"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return used


def temp_dirs(root: Path) -> list[Path]:
    """Every cache directory the lifecycle writes temporary files in (never inside a layer)."""
    projects = _children(root / "projects")
    # ecr-tokens: lifecycle.ecr.credentials caches registry tokens there (same temp names).
    return [root, root / "blobs", root / "blobs" / "sha256", root / "receipts",
            root / "ecr-tokens",
            *projects, *(d for p in projects for d in _children(p / "layers")),
            *(d for p in projects for d in _children(p / PACK_INDEX))]


def collect(root: Path) -> GcReport:
    """Remove cache blobs no project's latest build uses, and dead writers' temps."""
    if not (root / "blobs").is_dir():
        return GcReport(0, (), ())
    blobs = cache_blobs(root)
    with blobs_locked(root, exclusive=True):
        recovered = tuple(str(p) for d in temp_dirs(root) for p in recover_temps(d))
        freed, removed = blobs.sweep(used_blobs(root))
    return GcReport(freed, removed, recovered)


def verify(root: Path, repair: bool = False) -> CacheVerifyReport:
    """Hash every cache blob; with ``repair``, remove corrupt ones (builds rewrite them)."""
    if not (root / "blobs").is_dir():
        return CacheVerifyReport(0, (), ())
    blobs = cache_blobs(root)
    with blobs_locked(root, exclusive=True):
        digests = list(blobs.digests())
        corrupt = tuple(d for d in digests if not blobs.verify(d))
        repaired: list[str] = []
        if repair:
            for digest in corrupt:
                blobs.path(digest).unlink(missing_ok=True)
                repaired.append(f"cache blob {digest} was corrupt: removed (the next build "
                                "writes its layer again)")
    return CacheVerifyReport(len(digests), corrupt, tuple(repaired))


def temps_left(root: Path) -> list[Path]:
    """Temporary files still in the cache (their writers are alive)."""
    return [p for d in temp_dirs(root) for p in find_temps(d)]


def _children(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.is_dir() and not p.is_symlink())
    except (FileNotFoundError, NotADirectoryError):
        return []
