"""The ``oci-archive:FILE[:TAG]`` source and sink: a tar of an OCI image layout.

Archives are written deterministically (members sorted, mtime fixed at docs/reference.md §4's
constant, uid/gid 0 without names) into a temporary file that replaces FILE when complete;
a sink writes a new archive holding just this image. They are read lazily: one pass over
the tar headers (seeking past the data), then each blob is read from its offset. Compressed
(gzip) archives are refused rather than unpacked to disk.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from lifecycle import jsonutil
from lifecycle.errors import BaseImageFetchError, BaseImageNotFound, ExportError
from lifecycle.image.blobs import CHUNK, Digest, hex_of, note_temp_dir, temp_name
from lifecycle.image.image import OCI_INDEX, Image, Layer
from lifecycle.image.reference import Reference
from lifecycle.image.transports.oci_layout import LAYOUT_VERSION, Progress, index_entry, resolve

FIXED_MTIME = 315532801  # 1980-01-01T00:00:01Z
_BLOCK = 512
_GZIP_MAGIC = b"\x1f\x8b"


class TarWriter:
    """A minimal deterministic tar writer that streams member data without buffering it."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def add_dir(self, name: str) -> None:
        """Add a directory entry."""
        info = self._info(name.rstrip("/") + "/", 0, 0o755)
        info.type = tarfile.DIRTYPE
        self._out.write(info.tobuf(tarfile.USTAR_FORMAT))

    def add_bytes(self, name: str, data: bytes) -> None:
        """Add a regular file holding ``data``."""
        self.add_stream(name, len(data), io.BytesIO(data))

    def add_stream(self, name: str, size: int, reader: BinaryIO) -> str:
        """Add a regular file of exactly ``size`` bytes read from ``reader``; return its digest."""
        self._out.write(self._info(name, size, 0o644).tobuf(tarfile.USTAR_FORMAT))
        hasher = hashlib.sha256()
        remaining = size
        while remaining:
            chunk = reader.read(min(CHUNK, remaining))
            if not chunk:
                raise ExportError(
                    f"failed to write {name}: its source ended {remaining} bytes early"
                )
            hasher.update(chunk)
            self._out.write(chunk)
            remaining -= len(chunk)
        self._out.write(b"\0" * (-size % _BLOCK))
        return f"sha256:{hasher.hexdigest()}"

    def close(self) -> None:
        """Write the end-of-archive marker, padded to a whole tar record."""
        self._out.write(b"\0" * (2 * _BLOCK))
        position = self._out.tell()
        self._out.write(b"\0" * (-position % tarfile.RECORDSIZE))

    @staticmethod
    def _info(name: str, size: int, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = mode
        info.mtime = FIXED_MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info


def write_archive(path: Path, fill: Callable[[TarWriter], None]) -> None:
    """Write a tar at ``path`` through a temporary file that replaces it once complete.

    The temp is named by ``temp_name`` (it carries our pid) in a directory noted for ``gc``,
    so a writer killed mid-archive leaves nothing that outlives the next ``gc``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    note_temp_dir(path.parent)
    temp = path.parent / temp_name()
    try:
        with open(temp, "xb") as out:
            writer = TarWriter(out)
            fill(writer)
            writer.close()
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def add_layout(
    writer: TarWriter,
    image: Image,
    index: Mapping[str, Any],
    progress: Progress | None,
    extra: Mapping[str, bytes] | None = None,
) -> None:
    """Add an OCI layout of ``image`` (plus ``extra`` files) to ``writer``, in sorted order."""
    blobs: dict[str, tuple[int, Callable[[], BinaryIO]]] = {
        image.config_digest: (len(image.config_bytes), lambda: io.BytesIO(image.config_bytes)),
        image.digest: (len(image.manifest_bytes), lambda: io.BytesIO(image.manifest_bytes)),
    }
    for layer in image.layers:
        blobs[layer.digest] = (layer.size, _opener(layer))
    files: dict[str, bytes] = {
        "index.json": jsonutil.dumps(index),
        "oci-layout": LAYOUT_VERSION,
        **(extra or {}),
    }
    writer.add_dir("blobs")
    writer.add_dir("blobs/sha256")
    names = sorted([*(f"blobs/sha256/{hex_of(d)}" for d in blobs), *files])
    for name in names:
        if name in files:
            writer.add_bytes(name, files[name])
            continue
        digest = f"sha256:{PurePosixPath(name).name}"
        size, opener = blobs[digest]
        with opener() as reader:
            actual = writer.add_stream(name, size, reader)
        if actual != digest:
            raise ExportError(f"failed to write blob {digest}: its content has digest {actual}")
        if progress is not None and size >= 1 << 20:
            progress(f"{Digest(digest).short}: archived ({size / 1e6:.1f} MB)")


def _opener(layer: Layer) -> Callable[[], BinaryIO]:
    def open_layer() -> BinaryIO:
        path = layer.local_path()
        if path is not None:
            return open(path, "rb")
        try:
            handle: BinaryIO = layer.open()
        except LookupError as error:
            raise ExportError(f"failed to write layer {layer.digest}: {error}") from error
        return handle

    return open_layer


class _Section(io.RawIOBase):
    """A read-only window of ``size`` bytes at ``offset`` of a file."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self._file = open(path, "rb")
        self._file.seek(offset)
        self._remaining = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        count = min(len(view), self._remaining)
        if count == 0:
            return 0
        got = self._file.readinto(view[:count])
        self._remaining -= got
        return got

    def close(self) -> None:
        self._file.close()
        super().close()


@dataclass(frozen=True)
class ArchiveSource:
    """Blobs read straight out of a tar archive by member offset; also a ``BlobSource``."""

    path: Path
    members: Mapping[str, tuple[int, int]]
    """Member name → (data offset, size)."""
    by_digest: Mapping[str, str] = field(default_factory=dict)
    """Digest → member name, for blobs not stored as ``blobs/sha256/<hex>``."""

    @classmethod
    def scan(cls, path: Path, where: str) -> ArchiveSource:
        """Index the members of the tar at ``path`` without reading their data."""
        try:
            with open(path, "rb") as handle:
                magic = handle.read(2)
        except FileNotFoundError as error:
            raise BaseImageNotFound(
                f"failed to read image {where}: {path} does not exist"
            ) from error
        if magic == _GZIP_MAGIC:
            raise BaseImageFetchError(
                f"failed to read image {where}: {path} is compressed",
                hint="decompress it first (gunzip), then read the plain tar",
            )
        members: dict[str, tuple[int, int]] = {}
        links: dict[str, str] = {}
        try:
            with tarfile.open(path, "r:") as tar:
                for info in tar:
                    name = clean_member(info.name)
                    if info.isfile():
                        members[name] = (info.offset_data, info.size)
                    elif info.issym():
                        links[name] = clean_member(str(PurePosixPath(name).parent / info.linkname))
                    elif info.islnk():
                        links[name] = clean_member(info.linkname)
        except tarfile.TarError as error:
            raise BaseImageFetchError(
                f"failed to read image {where}: {path} is not a tar: {error}"
            ) from error
        for name, target in links.items():
            for _ in range(8):  # follow short chains of links; loops stop here
                target = links.get(target, target)
            if target in members:
                members[name] = members[target]
        return cls(path, members)

    def with_digests(self, by_digest: Mapping[str, str]) -> ArchiveSource:
        """The same archive, also naming blobs by digest through ``by_digest``."""
        return ArchiveSource(self.path, self.members, dict(by_digest))

    def open_member(self, name: str) -> BinaryIO:
        """Open one member for reading (``KeyError`` when absent)."""
        offset, size = self.members[clean_member(name)]
        return io.BufferedReader(_Section(self.path, offset, size), buffer_size=CHUNK)

    def read_member(self, name: str) -> bytes:
        """A member's whole content; for small members."""
        with self.open_member(name) as handle:
            return handle.read()

    def member_of(self, digest: str) -> str:
        """The member holding blob ``digest``."""
        return self.by_digest.get(digest) or f"blobs/sha256/{hex_of(digest)}"

    def read(self, digest: str) -> bytes:
        """A blob's whole content."""
        return self.read_member(self.member_of(digest))

    def open(self, digest: str) -> BinaryIO:
        """Open a blob for reading."""
        return self.open_member(self.member_of(digest))

    def local_path(self, digest: str) -> Path | None:
        """Always ``None``: a member is not a file of its own."""
        return None


def clean_member(name: str) -> str:
    """A member name normalised as archives are indexed: no ``./``, no ``..``, no leading ``/``."""
    parts: list[str] = []
    for part in PurePosixPath(name).parts:
        if part in ("", ".", "/"):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def read_layout(source: ArchiveSource, tag: str | None, platform: str, where: str) -> Image:
    """Read the image ``tag`` names from the OCI layout inside an archive."""
    try:
        index = jsonutil.loads(source.read_member("index.json"))
    except KeyError as error:
        raise BaseImageFetchError(
            f"failed to read image {where}: the archive has no index.json"
        ) from error
    return resolve(index, tag, platform, source.read, where, source)


def read(ref: Reference, platform: str) -> Image:
    """Read the image an ``oci-archive:`` reference names."""
    where = str(ref)
    return read_layout(ArchiveSource.scan(Path(ref.path), where), ref.tag, platform, where)


def write(image: Image, refs: Sequence[Reference], progress: Progress | None) -> str:
    """Write a new archive holding ``image`` under the tag of each of ``refs``."""
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [index_entry(image, ref.tag_or_default) for ref in refs],
    }
    write_archive(Path(refs[0].path), lambda writer: add_layout(writer, image, index, progress))
    return image.digest
