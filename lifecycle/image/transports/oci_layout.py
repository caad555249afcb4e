"""The ``oci:DIR[:TAG]`` source and sink: an OCI image layout directory.

A layout is ``oci-layout``, ``index.json`` and ``blobs/sha256/``; a tag is the
``org.opencontainers.image.ref.name`` annotation of an ``index.json`` entry. The local store
is a layout too and reuses ``Layout``.

Writers follow one protocol so that concurrent writers and ``gc`` cannot hurt each other:
hold a shared lock on ``blobs/`` for the whole write (``gc`` takes it exclusively), store
every blob (layers, config, then manifest) before touching the index, then rewrite
``index.json`` through a temporary file under an exclusive lock on the layout directory.
Locks are ``flock`` on the directories themselves, so the layout holds no extra files; they
need a local filesystem.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lifecycle import jsonutil
from lifecycle.errors import BaseImageFetchError, BaseImageNotFound, ExportError
from lifecycle.image.blobs import (
    CHUNK,
    BlobDir,
    Digest,
    digest_of,
    fsync_dir,
    note_temp_dir,
    recover_temps,
    write_atomic,
)
from lifecycle.image.image import (
    INDEX_TYPES,
    OCI_INDEX,
    BlobSource,
    Image,
    from_manifest,
    platform_matches,
)
from lifecycle.image.reference import DEFAULT_TAG, Reference

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = b'{"imageLayoutVersion":"1.0.0"}'
PROGRESS_STEP = 64 << 20
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

Progress = Callable[[str], None]


def empty_index() -> dict[str, Any]:
    """An ``index.json`` document with no entries."""
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def checked_index(value: Any) -> dict[str, Any]:
    """``value`` when it is an index whose entries can be used; else ValueError saying why.

    A truncated write, a hand edit or a hostile layout must not reach code that indexes into
    the document (``[]`` or ``{"manifests": 5}``), nor a digest that is a path
    (``sha256:../..``) reach a blob lookup.
    """
    if not isinstance(value, dict):
        raise ValueError(f"is a JSON {type(value).__name__}, not an object")
    entries = value.get("manifests", [])
    if not isinstance(entries, list):
        raise ValueError("has a 'manifests' that is not a list")
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"has manifests[{number}] that is not an object")
        digest = entry.get("digest")
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise ValueError(f"has manifests[{number}].digest = {digest!r}, not "
                             "sha256:<64 hex digits>")
        annotations = entry.get("annotations", {})
        if not isinstance(annotations, dict):
            raise ValueError(f"has manifests[{number}].annotations that is not an object")
    return value


def load_index(path: Path) -> dict[str, Any]:
    """Read and check an ``index.json``; FileNotFoundError when absent, ValueError when bad."""
    raw = path.read_bytes()
    try:
        value = jsonutil.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"is not valid JSON ({error.msg} at byte {error.pos} of "
                         f"{len(raw)})") from None
    except RecursionError:
        raise ValueError("is nested too deeply") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"is not UTF-8 ({error.reason})") from None
    return checked_index(value)


def ref_name(entry: Mapping[str, Any]) -> str | None:
    """The tag an index entry carries, if any."""
    name = (entry.get("annotations") or {}).get(REF_NAME)
    return str(name) if name is not None else None


def index_entry(
    image: Image, name: str | None, extra: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The ``index.json`` descriptor of ``image`` tagged ``name``."""
    config = image.config
    platform = {"os": config.get("os", ""), "architecture": config.get("architecture", "")}
    if config.get("variant"):
        platform["variant"] = config["variant"]
    entry: dict[str, Any] = {
        "mediaType": image.manifest_media_type,
        "digest": image.digest,
        "size": len(image.manifest_bytes),
        "platform": platform,
    }
    annotations = dict(extra or {})
    if name is not None:
        annotations[REF_NAME] = name
    if annotations:
        entry["annotations"] = annotations
    return entry


def read_verified(read: Callable[[str], bytes], digest: str, where: str) -> bytes:
    """Read a small blob through ``read`` and check it against its digest."""
    try:
        data = read(digest)
    except (FileNotFoundError, KeyError) as error:
        raise BaseImageFetchError(
            f"failed to read image {where}: blob {digest} is missing"
        ) from error
    if digest_of(data) != digest:
        raise BaseImageFetchError(
            f"failed to read image {where}: blob {digest} is corrupt (its digest is "
            f"{digest_of(data)})"
        )
    return data


def resolve(
    index: Mapping[str, Any],
    tag: str | None,
    platform: str,
    read: Callable[[str], bytes],
    where: str,
    source: BlobSource,
) -> Image:
    """Find the image ``tag`` names in ``index`` (for ``platform``) and build it from ``read``.

    With no tag, ``latest`` is used when present, else the only entry of the index.
    """
    if not isinstance(index, Mapping) or not isinstance(index.get("manifests", []), list):
        raise BaseImageFetchError(f"failed to read image {where}: index.json is not an index")
    entries = [e for e in index.get("manifests") or [] if isinstance(e, dict)]
    tags = sorted({name for e in entries if (name := ref_name(e)) is not None})
    if tag is None:
        candidates = [e for e in entries if ref_name(e) == DEFAULT_TAG]
        if not candidates and (not tags or len({e.get("digest") for e in entries}) == 1):
            candidates = entries
    else:
        candidates = [e for e in entries if ref_name(e) == tag]
    if not candidates:
        wanted = f"tag {tag!r}" if tag is not None else "a tag (several images, none 'latest')"
        raise BaseImageNotFound(
            f"failed to read image {where}: no {wanted} in the index",
            hint=f"tags present: {', '.join(tags) or 'none'}",
        )
    try:
        descriptor = _pick(candidates, platform, where)
        while descriptor.get("mediaType") in INDEX_TYPES:
            child = jsonutil.loads(read_verified(read, descriptor["digest"], where))
            descriptor = _pick(child.get("manifests") or [], platform, where)
        manifest = read_verified(read, descriptor["digest"], where)
        config_digest = (jsonutil.loads(manifest).get("config") or {}).get("digest", "")
        config = read_verified(read, config_digest, where)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        # ValueError covers bad JSON and digests that are not sha256:<hex>.
        raise BaseImageFetchError(
            f"failed to read image {where}: malformed index or manifest ({error!r})"
        ) from error
    return from_manifest(manifest, config, source)


def _pick(entries: Sequence[Mapping[str, Any]], platform: str, where: str) -> Mapping[str, Any]:
    if len(entries) == 1:
        return entries[0]
    for entry in entries:
        if platform_matches(entry.get("platform"), platform):
            return entry
    present = sorted(
        "/".join(str(p.get(k)) for k in ("os", "architecture", "variant") if p.get(k))
        for p in (e.get("platform") or {} for e in entries)
    )
    raise BaseImageNotFound(
        f"failed to read image {where}: no manifest for platform {platform}",
        hint=f"platforms present: {', '.join(present) or 'none declared'}",
    )


def write_blobs(image: Image, dest: BlobDir, progress: Progress | None = None) -> None:
    """Copy the image's missing blobs into ``dest``: layers, config, then manifest last.

    Layers with a local file are hard-linked when possible; others are streamed and checked.
    ``dest`` trusts what it already holds only as ``BlobDir.has`` allows, so a corrupt blob
    there is replaced from the image's source.
    """
    for layer in image.layers:
        if dest.has(layer.digest):
            continue
        if isinstance(layer.source, BlobDir):
            dest.put_blob(layer.source, layer.digest)
            linked = dest.path(layer.digest).stat().st_ino == \
                layer.source.path(layer.digest).stat().st_ino
            _say(progress, f"{layer.digest[:19]}: {'linked' if linked else 'copied'}", layer.size)
            continue
        path = layer.local_path()
        if path is not None:
            dest.put_file(path, layer.digest)
            linked = dest.path(layer.digest).stat().st_ino == path.stat().st_ino
            how = "linked" if linked else "copied"
            _say(progress, f"{Digest(layer.digest).short}: {how}", layer.size)
            continue
        if layer.source is None:
            raise ExportError(
                f"failed to write layer {layer.digest}: it has no source and is not present "
                f"in {dest.root}"
            )
        with layer.open() as handle:
            _, size = dest.put_stream(
                _chunks(handle, layer.digest, layer.size, progress), layer.digest
            )
        if size != layer.size:
            raise ExportError(
                f"failed to write layer {layer.digest}: {size} bytes, expected {layer.size}"
            )
        _say(progress, f"{Digest(layer.digest).short}: copied", layer.size)
    if not dest.has(image.config_digest):
        dest.put_bytes(image.config_bytes)
    if not dest.has(image.digest):
        dest.put_bytes(image.manifest_bytes)


def _chunks(handle: Any, digest: str, total: int, progress: Progress | None) -> Iterator[bytes]:
    done = 0
    next_report = PROGRESS_STEP
    while chunk := handle.read(CHUNK):
        done += len(chunk)
        if progress is not None and done >= next_report:
            progress(f"{Digest(digest).short}: {done >> 20} of {total >> 20} MiB")
            next_report += PROGRESS_STEP
        yield chunk


def _say(progress: Progress | None, text: str, size: int) -> None:
    if progress is not None:
        progress(f"{text} ({size / 1e6:.1f} MB)")


@contextlib.contextmanager
def flocked(directory: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold an ``flock`` on ``directory`` for the duration of the block."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


class Layout:
    """An OCI image layout directory, read and written under the locking protocol above."""

    def __init__(self, root: Path | str, ledger: Path | None = None) -> None:
        self.root = Path(root)
        self.blobs = BlobDir(self.root / "blobs", ledger)

    @property
    def index_path(self) -> Path:
        """The layout's ``index.json``."""
        return self.root / "index.json"

    def exists(self) -> bool:
        """Whether the directory holds a layout (an ``index.json``)."""
        return self.index_path.is_file()

    def index(self) -> dict[str, Any]:
        """The current ``index.json`` document (an empty one when there is none yet)."""
        try:
            return load_index(self.index_path)
        except FileNotFoundError:
            return empty_index()
        except ValueError as error:
            raise ExportError(
                f"failed to use the image layout {self.root}: its index.json {error}",
                hint="restore index.json from a backup, or move it away and write the images "
                     "again (their blobs stay until gc)") from None
        except OSError as error:
            raise ExportError(
                f"failed to read {self.index_path}: {error.strerror}",
                hint="check the permissions of the layout directory") from None

    def tags(self) -> list[str]:
        """Every tag named in the index, sorted."""
        return sorted({n for e in self.index().get("manifests", []) if (n := ref_name(e))})

    def read(self, tag: str | None, platform: str, where: str) -> Image:
        """The image ``tag`` names; ``where`` is how errors name the layout."""
        if not self.exists():
            raise BaseImageNotFound(
                f"failed to read image {where}: {self.root} is not an OCI layout (no index.json)"
            )
        try:
            index = load_index(self.index_path)
        except ValueError as error:
            raise BaseImageFetchError(
                f"failed to read image {where}: its index.json {error}"
            ) from error
        except OSError as error:
            raise BaseImageFetchError(
                f"failed to read image {where}: {self.index_path}: {error.strerror}"
            ) from error
        return resolve(index, tag, platform, self.blobs.read, where, self.blobs)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the writers' shared lock (``gc`` waits until every writer is done)."""
        self.blobs.directory.mkdir(parents=True, exist_ok=True)
        with flocked(self.blobs.root, exclusive=False):
            yield

    @contextlib.contextmanager
    def collecting(self) -> Iterator[None]:
        """Hold the exclusive lock ``gc`` and ``verify`` need: no writer runs meanwhile."""
        self.blobs.directory.mkdir(parents=True, exist_ok=True)
        with flocked(self.blobs.root, exclusive=True):
            yield

    def update_index(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Apply ``change`` to ``index.json`` under the index lock, replacing it atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        with flocked(self.root, exclusive=True):
            layout_file = self.root / "oci-layout"
            if not layout_file.is_file():
                write_atomic(layout_file, LAYOUT_VERSION)
            write_atomic(self.index_path, jsonutil.dumps(change(self.index())))

    def write(
        self,
        image: Image,
        names: Sequence[str],
        progress: Progress | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> str:
        """Store ``image`` and point each of ``names`` at it; return the manifest digest."""
        with self.writing():
            write_blobs(image, self.blobs, progress)
            fsync_dir(self.blobs.directory)
            entries = [index_entry(image, name, extra) for name in names]

            def change(index: dict[str, Any]) -> dict[str, Any]:
                kept = [e for e in index.get("manifests") or [] if ref_name(e) not in names]
                return {**index, "manifests": kept + entries}

            self.update_index(change)
        return image.digest


def read(ref: Reference, platform: str) -> Image:
    """Read the image an ``oci:`` reference names."""
    return Layout(ref.path).read(ref.tag, platform, str(ref))


def write(image: Image, refs: Sequence[Reference], progress: Progress | None) -> str:
    """Write ``image`` to the layout of ``refs`` (all in one directory) under each tag."""
    layout = Layout(refs[0].path)
    # A killed writer's temps there are found by the next write or by the store's ``gc``.
    layout.blobs.directory.mkdir(parents=True, exist_ok=True)
    for directory in (layout.root, layout.blobs.directory):
        note_temp_dir(directory)
        recover_temps(directory)
    return layout.write(image, [ref.tag_or_default for ref in refs], progress)
