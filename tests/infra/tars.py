"""Hand-made tar layers for hostile fixtures: entries a well-behaved writer never produces."""

from __future__ import annotations

import gzip
import io
import tarfile

from lifecycle.image.blobs import digest_of

Entry = tuple[tarfile.TarInfo, bytes | None]


def gzip_layer(*entries: Entry) -> tuple[bytes, str]:
    """The gzip blob of a tar holding ``entries`` in order, and its DiffID."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    plain = raw.getvalue()
    return gzip.compress(plain, mtime=0), digest_of(plain)


def file_entry(name: str, data: bytes = b"x", mode: int = 0o644) -> Entry:
    """A regular file."""
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def special_entry(name: str, kind: bytes, target: str = "") -> Entry:
    """A symlink, hard link, FIFO or device (``kind`` is a ``tarfile`` type)."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None
