"""``build --cache-image``: the build cache's ``cache`` layers kept in an image of their own.

On an empty machine (a CI runner, a Kubernetes job) the layers a buildpack marks ``cache``,
which hold files a later build reads (a package manager's download cache, a toolchain), are
gone. At the end of a build they are written as the layers of a cache image; at the start of
the next one, the layers its cache lacks are fetched, checked and unpacked back into their
directories with their records, so the buildpack sees them ``reused``.

The cache image is no runnable image: its config has no entrypoint and no command, and its
``io.hybridless.cache`` label (below) says what it is. A ``launch`` and ``cache`` layer is the
same blob as in the app image, so writing it to the app image's registry sends nothing new.

Label (canonical JSON)::

    {"version": 1, "note": "...", "stack": ID | null, "mtime": SECONDS,
     "layers": [{"buildpack", "name", "launch", "build", "cache", "metadata", "executor",
                 "diff_id"}]}

Packing a cache layer costs a read and a compression of all its bytes, so it is skipped when
nothing in the directory changed: each layer keeps a stat index (:mod:`lifecycle.cache.appindex`'s
rules) of the files its blob was made from, written when it was packed and also right after
it was unpacked, so a runner that restored a layer and did not touch it sends the same blob
back without packing it again.

A cache image whose label is not one, or a layer that does not unpack, is reported and
skipped: the build rebuilds what it would have restored, so a damaged cache costs time, never
correctness. A registry that cannot be reached is an error, as it is for the push.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifecycle.cache import appindex
from lifecycle.cache.appindex import AppIndex
from lifecycle.cache.layers import (
    BlobInfo,
    LayerRecord,
    ProjectCache,
    bp_dirname,
    valid_layer_name,
)
from lifecycle.cache.previous import Restored
from lifecycle.cache.remote import ReadImage
from lifecycle.cache.unpack import UnpackRefused, unpack
from lifecycle.errors import LifecycleError
from lifecycle.image import image, tarball, transports, tree
from lifecycle.image.reference import Reference
from lifecycle.jsonutil import dumps as canonical
from lifecycle.jsonutil import loads

if TYPE_CHECKING:
    from lifecycle.image.transports.registry import RegistryOptions

CACHE_LABEL = "io.hybridless.cache"
VERSION = 1
NOTE = ("build cache of hybridless-lifecycle (build --cache-image): cache layers only, "
        "not a runnable image")


@dataclass(frozen=True)
class CachedLayer:
    """One layer of the cache image: the record it restores, and the DiffID of its blob."""

    record: LayerRecord
    """Flags, metadata and executor; no blob (the image's layer is the blob)."""
    diff_id: str

    @property
    def label_name(self) -> str:
        """``<buildpack-id>/<layer>``."""
        return f"{self.record.buildpack}/{self.record.name}"

    def to_json(self) -> dict[str, Any]:
        """The label's layer object."""
        r = self.record
        return {"buildpack": r.buildpack, "name": r.name, "launch": r.launch,
                "build": r.build, "cache": r.cache, "metadata": dict(r.metadata),
                "executor": r.executor, "diff_id": self.diff_id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CachedLayer:
        """Parse one layer object; raises ValueError on anything a writer never puts there."""
        launch, build, cache = data["launch"], data["build"], data["cache"]
        buildpack, name, executor, diff_id = (data["buildpack"], data["name"],
                                              data["executor"], data["diff_id"])
        metadata = data["metadata"]
        if not all(isinstance(f, bool) for f in (launch, build, cache)) or not all(
                isinstance(t, str) for t in (buildpack, name, executor, diff_id)):
            raise ValueError("a layer's flags must be booleans and its names strings")
        if not isinstance(metadata, Mapping):
            raise ValueError(f"layer {name!r} has metadata that is not an object")
        return cls(LayerRecord(buildpack, name, launch, build, cache, dict(metadata),
                               executor=executor), diff_id)


@dataclass(frozen=True)
class CacheLabel:
    """The cache image's label."""

    stack: str | None
    layers: tuple[CachedLayer, ...]
    mtime: int | None = None
    """The file time the layers were packed with (None: not said)."""

    def encode(self) -> str:
        """Canonical JSON text."""
        return canonical({"version": VERSION, "note": NOTE, "stack": self.stack,
                          "mtime": self.mtime,
                          "layers": [la.to_json() for la in self.layers]}).decode()

    @classmethod
    def decode(cls, text: str) -> CacheLabel:
        """Parse the label; raises ValueError (or KeyError, TypeError) when it is not ours."""
        data = loads(text)
        if not isinstance(data, Mapping) or data.get("version") != VERSION:
            raise ValueError(f"it is not a version {VERSION} {CACHE_LABEL} label")
        stack = data.get("stack")
        if stack is not None and not isinstance(stack, str):
            raise ValueError("its stack is not a string")
        layers = data["layers"]
        if not isinstance(layers, list):
            raise ValueError("its layers are not a list")
        mtime = data.get("mtime")
        if mtime is not None and (not isinstance(mtime, int) or isinstance(mtime, bool)):
            raise ValueError("its mtime is not an integer")
        return cls(stack, tuple(CachedLayer.from_json(la) for la in layers), mtime)


@dataclass(frozen=True)
class Written:
    """The cache image a build wrote, or why it could not."""

    image: str
    digest: str | None
    layers: tuple[str, ...]
    error: str | None = None


def restore(found: ReadImage, cache: ProjectCache, group: Iterable[str], stack: str | None,
            mtime: int, log: logging.Logger) -> Restored:
    """Unpack the cache image's layers that the cache lacks, with their records.

    ``mtime`` is this build's file time: a layer packed with the same one is indexed as it
    is unpacked, so an untouched layer is not packed again at the end.
    """
    nothing = Restored(str(found.ref), ())
    text = found.image.labels.get(CACHE_LABEL)
    if text is None:
        log.warning("cache image %s has no %s label: it is not a cache image; ignored",
                    found.ref, CACHE_LABEL)
        return nothing
    try:
        label = CacheLabel.decode(text)
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        log.warning("cache image %s has an unreadable %s label (%s); ignored", found.ref,
                    CACHE_LABEL, error)
        return nothing
    if label.stack != stack:
        log.info("cache image %s holds stack %s's cache, this build uses %s; not restored",
                 found.ref, label.stack or "(none)", stack or "(none)")
        return nothing
    members = set(group)
    blobs = found.layer_by_diff_id()
    restored: list[str] = []
    for layer in label.layers:
        record, where = layer.record, layer.label_name
        if record.buildpack not in members or not record.cache:
            continue
        if not valid_layer_name(record.name):
            log.warning("cache image %s names a layer %r: not a layer name; ignored",
                        found.ref, where)
            continue
        if cache.read_record(record.buildpack, record.name) is not None:
            continue  # what this machine built last wins
        blob = blobs.get(layer.diff_id)
        if blob is None:
            log.warning("cache image %s: layer %s has DiffID %s, not one of the image's "
                        "layers; ignored", found.ref, where, layer.diff_id)
            continue
        info = BlobInfo(blob.digest, blob.diff_id, blob.size)
        try:
            found.fetch(blob, cache.blobs)
            dest = cache.layers_dir(record.buildpack) / record.name
            cache.drop(record.buildpack, record.name)
            prefix = f"layers/{bp_dirname(record.buildpack)}/{record.name}"
            with cache.blobs.open(blob.digest) as stream:
                unpack(stream, prefix, dest, blob.diff_id)
            if label.mtime == mtime and not record.launch:
                # Every file was written before this scan starts, so a file whose time is not
                # older than that was changed since: the index's racy-file rule (which allows
                # one second of timestamp granularity before its start) must see it.
                started = appindex.now_ns() + appindex.GRANULARITY_NS
                _remember(cache, record.buildpack, record.name,
                          _scan(dest, prefix, mtime, started), info)
        except (LifecycleError, OSError) as error:
            message = error.message if isinstance(error, LifecycleError) else str(error)
            prefix = "refused" if isinstance(error, UnpackRefused) else "failed to restore"
            log.warning("cache image %s: %s layer %s: %s; it is rebuilt", found.ref, prefix,
                        where, message)
            continue
        # A launch layer's blob is the app image's: keep it, as a local build would.
        cache.write_record(dataclasses.replace(record, blob=info if record.launch else None))
        restored.append(where)
    if restored:
        log.info("restored %d cache layer(s) from %s: %s", len(restored), found.ref,
                 ", ".join(restored))
    return Restored(str(found.ref), tuple(restored))


def assemble(cache: ProjectCache, group: Sequence[str], stack: str | None, platform: str,
             mtime: int, log: logging.Logger) -> tuple[image.Image, tuple[str, ...]]:
    """The cache image of this build's ``cache`` layers, their blobs in the cache's blobs."""
    entries: list[CachedLayer] = []
    layers: list[image.Layer] = []
    for buildpack in group:
        for name, record in sorted(cache.records(buildpack).items()):
            if not record.cache:
                continue
            blob = record.blob if record.launch else None
            if blob is None or not cache.blobs.has(blob.digest):
                path = cache.layers_dir(buildpack) / name
                if not path.is_dir():
                    continue
                blob = _pack(cache, buildpack, name, path, mtime, log)
            entries.append(CachedLayer(dataclasses.replace(record, blob=None, origin=None),
                                       blob.diff_id))
            layers.append(image.Layer(blob.digest, blob.diff_id, blob.size,
                                      tarball.Blob.media_type, cache.blobs))
    os_name, _, rest = platform.partition("/")
    arch, _, variant = rest.partition("/")
    out = image.append_layers(image.empty(os_name, arch, variant=variant or None), layers,
                              history=[f"hybridless: cache {e.label_name}" for e in entries])
    out = image.with_config(out, labels={CACHE_LABEL: CacheLabel(stack, tuple(entries), mtime)
                                         .encode()},
                            created=image.created_from_epoch(mtime))
    names = tuple(e.label_name for e in entries)
    log.debug("cache image: %s", ", ".join(names) or "no cache layers")
    return out, names


def _scan(path: Path, prefix: str, mtime: int, started_ns: int) -> appindex.Scan:
    """The stat scan of a cache layer's directory, keyed with what else shapes its blob."""
    found = tree.scan(path, prefix=prefix, confine=False)
    key, newest = appindex.scan_key(found, {"prefix": prefix, "mtime": mtime,
                                            "compressor": tarball.COMPRESSOR})
    return appindex.Scan(found, started_ns, key, newest)


def _index(cache: ProjectCache, buildpack: str, name: str) -> AppIndex:
    return AppIndex(cache.pack_index_path(buildpack, name))


def _remember(cache: ProjectCache, buildpack: str, name: str, scan: appindex.Scan,
              blob: BlobInfo) -> None:
    index = _index(cache, buildpack, name)
    index.path.parent.mkdir(parents=True, exist_ok=True)
    index.store(scan, blob)


def _pack(cache: ProjectCache, buildpack: str, name: str, path: Path, mtime: int,
          log: logging.Logger) -> BlobInfo:
    """The cache layer's blob: the indexed one when no file changed, else packed anew."""
    prefix = f"layers/{bp_dirname(buildpack)}/{name}"
    scan = _scan(path, prefix, mtime, appindex.now_ns())
    known = _index(cache, buildpack, name).lookup(scan)
    if known is not None and cache.blobs.has(known.digest):
        log.debug("cache layer %s/%s unchanged: not packed again", buildpack, name)
        return known
    written = tarball.write_layer(scan.entries, cache.blobs, mtime=mtime)
    blob = BlobInfo(written.digest, written.diff_id, written.size)
    _remember(cache, buildpack, name, scan, blob)
    return blob


def write(ref: Reference, cache: ProjectCache, group: Sequence[str], stack: str | None,
          platform: str, mtime: int, registry: RegistryOptions | None,
          log: logging.Logger) -> Written:
    """Write the cache image to ``ref``; a failure is reported, not raised (the app image
    is written already, and the next build only loses time)."""
    try:
        built, names = assemble(cache, group, stack, platform, mtime, log)
        log.info("writing cache image %s (%d layer(s))", ref, len(names))
        options = registry
        if ref.transport == "docker":
            from lifecycle.image.transports.registry import RegistryOptions

            # The local store needs no copy of a cache; the registry is where it is read.
            options = dataclasses.replace(registry or RegistryOptions(), store_copy=False)
        digest = transports.write_image(built, ref, progress=log.info, registry=options)
    except (LifecycleError, OSError) as error:
        message = error.message if isinstance(error, LifecycleError) else str(error)
        log.warning("failed to write cache image %s: %s (the image itself was written; the "
                    "next build restores nothing from it)", ref, message)
        return Written(str(ref), None, (), message)
    return Written(str(ref), digest, names)
