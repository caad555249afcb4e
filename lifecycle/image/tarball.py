"""Write a layer: entries to a reproducible tar, gzip and both digests in one pass.

The tar is built by hand (``tarfile`` runs at a fraction of the speed we need) and is
deterministic: entries in the order given, uid/gid 0 with empty names, one integer mtime,
device numbers 0. Names that fit are plain ustar; longer or non-ASCII names and link targets,
and sizes over 8 GiB, go into PAX extended headers whose own fields are fixed too.

Compression is pinned to python-isal at one level behind a hand-written gzip header, so the
compressed digest depends on nothing but the tar bytes. The tar stream is cut into blocks of
exactly ``BLOCK`` bytes whatever sizes the files are read in (isal's output depends on how its
input is split). Each block becomes one gzip member of its own (RFC 1952 §2.2: a gzip file is
a series of members, and every gzip reader, Go's included, reads them all): the blocks are
then deflated by isal's one-shot call on both cores at once while the calling thread reads
files and hashes. Measured here, a one-shot member costs about a sixth less CPU than
deflating the same block through a stream object primed with the previous block and ended
with a sync flush (pigz's way of keeping one member), for 0.2 % more output. The blob is
flushed to disk behind the writer, so the fsync that must come before the rename has little
left to wait for.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import struct
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from io import BufferedWriter
from pathlib import Path

import isal
from isal import igzip_lib, isal_zlib

from lifecycle.errors import BuildError
from lifecycle.image.blobs import BlobDir, fsync_dir, temp_name
from lifecycle.image.tree import Entry

# 1980-01-01T00:00:01Z (docs/reference.md §4); callers pass SOURCE_DATE_EPOCH.
DEFAULT_MTIME = 315532801
LEVEL = 2  # measured here: faster than level 1 on mixed data, and smaller output
BLOCK = 1 << 20
# Everything the blob's bytes depend on besides the tar: the library, the level, the framing.
COMPRESSOR = f"isal-{isal.__version__}/gzip-{LEVEL}/members-of-{BLOCK >> 20}MiB"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"

_SMALL_FILE = 64 * 1024  # files up to this size are read whole, ahead, on reader threads
_BATCH = 32  # entries per read-ahead task
_BATCHES_AHEAD = 4  # bounds read-ahead memory to 128 small files (8 MiB at most)
_READERS = 2
_IN_FLIGHT = 4  # blocks being compressed at once; bounds memory to a few MiB
_THREADS = 2  # deflate workers; the calling thread reads, hashes and writes meanwhile
_SYNC_EVERY = 16 << 20  # compressed bytes between background flushes
# Magic, deflate, no flags, mtime 0, XFL 4 ("fastest"), OS 255 ("unknown"): never host-dependent.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"
_MAX_OCTAL_11 = 8**11 - 1


@dataclass(frozen=True)
class Blob:
    """A layer blob written under its digest, with the digests an image manifest needs."""

    digest: str
    diff_id: str
    size: int
    path: Path
    media_type: str = LAYER_MEDIA_TYPE


def write_layer(
    entries: Iterable[Entry],
    dest: Path | BlobDir,
    *,
    mtime: int = DEFAULT_MTIME,
    read_size: int = BLOCK,
) -> Blob:
    """Write ``entries`` as a read-only gzip layer blob named by its digest in ``dest``.

    Into a ``BlobDir`` the blob is committed by ``BlobDir.adopt``: a corrupt blob of the same
    name is replaced, a trusted one kept. Into a plain directory an existing name is kept.
    """
    return write_tar_layer(tar_bytes_iter(entries, mtime=mtime, read_size=read_size), dest)


def write_tar_layer(tar_blocks: Iterable[bytes], dest: Path | BlobDir) -> Blob:
    """Write an uncompressed tar, given as ``BLOCK``-sized pieces, as a gzip layer blob.

    The pieces must be exactly ``BLOCK`` bytes (the last may be short) for the blob to be
    reproducible; :func:`read_blocks` cuts a tar file that way.
    """
    dest_dir = dest.directory if isinstance(dest, BlobDir) else dest
    dest_dir.mkdir(parents=True, exist_ok=True)
    # blobs.temp_name is what recovery matches: it deletes temps whose writer pid is dead.
    temp = dest_dir / temp_name()
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        with (
            open(fd, "wb", closefd=True) as out,
            ThreadPoolExecutor(_THREADS + 1, thread_name_prefix="layer") as pool,
        ):
            sink = _FlushBehind(out, pool)
            diff_id, digest, size = _compress(tar_blocks, sink, pool)
            sink.sync()
        if isinstance(dest, BlobDir):
            final = dest.adopt(temp, digest)
        else:
            final = dest_dir / digest.removeprefix("sha256:")
            if final.exists():
                temp.unlink()
            else:
                os.chmod(temp, 0o444)
                os.replace(temp, final)
                fsync_dir(dest_dir)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return Blob(digest=digest, diff_id=diff_id, size=size, path=final)


def write_tar(chunks: Iterable[bytes], dest: Path | BlobDir) -> Blob:
    """Write a tar stream given in chunks of any size as a layer blob in our framing.

    The stream is re-cut into ``BLOCK``-sized pieces first, so the blob's bytes depend only on
    the tar's bytes, not on how the caller happened to chunk them.
    """
    def blocked() -> Iterator[bytes]:
        blocks = _Blocks(BLOCK)
        for chunk in chunks:
            blocks.put(chunk)
            yield from blocks.take()
        yield from blocks.flush()

    return write_tar_layer(blocked(), dest)


def read_blocks(path: Path) -> Iterator[bytes]:
    """Yield a file in pieces of exactly ``BLOCK`` bytes (the last may be short)."""
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            yield block


def tar_bytes_iter(
    entries: Iterable[Entry], *, mtime: int = DEFAULT_MTIME, read_size: int = BLOCK
) -> Iterator[bytes]:
    """Yield the uncompressed tar in blocks of exactly ``BLOCK`` bytes (the last may be short)."""
    if not 0 <= mtime <= _MAX_OCTAL_11:
        raise BuildError(
            f"failed to write a layer: the file time {mtime} is out of range",
            hint="SOURCE_DATE_EPOCH must be a non-negative Unix time before the year 2242",
        )
    blocks = _Blocks(BLOCK)
    with ThreadPoolExecutor(_READERS, thread_name_prefix="layer-read") as readers:
        for entry, content in _read_ahead(entries, readers):
            blocks.put(_headers(entry, mtime))
            if content is not None:
                blocks.put(content)
                blocks.put(bytes(-entry.size % 512))
            elif entry.kind == "file" and entry.size:
                yield from _file_data(entry, blocks, read_size)
            yield from blocks.take()
    blocks.put(bytes(1024))  # two zero records end the archive
    yield from blocks.take()
    yield from blocks.flush()


def _read_ahead(
    entries: Iterable[Entry], readers: ThreadPoolExecutor
) -> Iterator[tuple[Entry, bytearray | None]]:
    """``entries`` in order, each small file with its content, read ahead on ``readers``.

    On these hosts opening and reading a small file costs tens of microseconds of waiting in
    the kernel, which the GIL does not need: reading files ahead on other threads overlaps
    those waits with the tar and hashing work here. Files go to the readers in batches, since
    a future per file costs more than the read it saves.
    """
    window: deque[tuple[list[Entry], Future[list[bytearray | None]]]] = deque()
    batch: list[Entry] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) == _BATCH:
            window.append((batch, readers.submit(_read_batch, batch)))
            batch = []
            if len(window) > _BATCHES_AHEAD:
                done, future = window.popleft()
                yield from zip(done, future.result(), strict=True)
    if batch:
        window.append((batch, readers.submit(_read_batch, batch)))
    while window:
        done, future = window.popleft()
        yield from zip(done, future.result(), strict=True)


def _read_batch(batch: list[Entry]) -> list[bytearray | None]:
    """The content of each small file of ``batch``; None for every other entry."""
    return [_read_small(e) if e.kind == "file" and 0 < e.size <= _SMALL_FILE else None
            for e in batch]


def _read_small(entry: Entry) -> bytearray:
    """A small file's whole content in one read, refused as :func:`_file_data` refuses."""
    buffer = bytearray(entry.size + 1)  # the extra byte is the growth probe
    with _source(entry) as fd:
        n = os.readv(fd, [buffer])
    if n != entry.size:
        raise _changed(entry)
    del buffer[n:]
    return buffer


def _compress(
    blocks: Iterable[bytes], out: _FlushBehind, pool: ThreadPoolExecutor
) -> tuple[str, str, int]:
    """Gzip ``blocks`` into ``out``, a member each, on ``pool``: (diff_id, digest, size)."""
    tar_hash, gz_hash = hashlib.sha256(), hashlib.sha256()
    written = 0

    def emit(parts: tuple[bytes, ...]) -> None:
        nonlocal written
        for data in parts:
            gz_hash.update(data)
            out.write(data)
            written += len(data)

    pending: deque[Future[tuple[bytes, ...]]] = deque()
    for block in blocks:
        pending.append(pool.submit(_member, block))
        tar_hash.update(block)
        while len(pending) > _IN_FLIGHT:
            emit(pending.popleft().result())
    while pending:
        emit(pending.popleft().result())
    return f"sha256:{tar_hash.hexdigest()}", f"sha256:{gz_hash.hexdigest()}", written


def _member(block: bytes) -> tuple[bytes, bytes, bytes]:
    """One gzip member holding ``block``: header, deflate stream, CRC-32 and length."""
    deflated = igzip_lib.compress(block, LEVEL, igzip_lib.COMP_DEFLATE)
    return _GZIP_HEADER, deflated, struct.pack("<II", isal_zlib.crc32(block), len(block))


class _FlushBehind:
    """The blob file, flushed to disk in the background as it grows so the last fsync is short."""

    def __init__(self, file: BufferedWriter, pool: ThreadPoolExecutor) -> None:
        self._file = file
        self._pool = pool
        self._unsynced = 0
        self._syncing: Future[None] | None = None

    def write(self, data: bytes) -> None:
        """Append ``data``; start a background flush when enough has piled up."""
        self._file.write(data)
        self._unsynced += len(data)
        if self._unsynced >= _SYNC_EVERY and not self._busy():
            self._file.flush()
            self._syncing = self._pool.submit(os.fdatasync, self._file.fileno())
            self._unsynced = 0

    def _busy(self) -> bool:
        if self._syncing is None:
            return False
        if not self._syncing.done():
            return True
        self._syncing.result()  # a failed flush (EIO, ENOSPC) surfaces here, not never
        return False

    def sync(self) -> None:
        """Wait until everything written is on disk."""
        if self._syncing is not None:
            self._syncing.result()
        self._file.flush()
        os.fsync(self._file.fileno())


class _Blocks:
    """Cuts a stream into fixed-size blocks; file data is read straight into the block.

    Full blocks wait in a list until the caller takes them: plain methods instead of
    generators keep the cost per small file down.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._pos = 0
        self._full: list[bytes] = []

    def put(self, data: bytes | bytearray) -> None:
        """Append ``data``."""
        end = self._pos + len(data)
        if end < self._size:  # the common case: a header or padding that fits
            self._buf[self._pos : end] = data
            self._pos = end
            return
        view = memoryview(data)
        while view:
            n = min(len(view), self._size - self._pos)
            self._buf[self._pos : self._pos + n] = view[:n]
            view = view[n:]
            self.advance(n)

    def space(self, limit: int) -> memoryview:
        """The free part of the current block, at most ``limit`` bytes, to read into."""
        return self._view[self._pos : min(self._size, self._pos + limit)]

    def advance(self, n: int) -> None:
        """Account for ``n`` bytes written through ``space``."""
        self._pos += n
        if self._pos == self._size:
            self._full.append(bytes(self._buf))  # cheaper than page-faulting a fresh buffer
            self._pos = 0

    def take(self) -> Sequence[bytes]:
        """Remove and return the blocks filled so far."""
        if not self._full:
            return ()
        full, self._full = self._full, []
        return full

    def flush(self) -> Sequence[bytes]:
        """Remove and return the last, partial block."""
        last = [bytes(self._buf[: self._pos])] if self._pos else []
        self._pos = 0
        return last


def _file_data(entry: Entry, blocks: _Blocks, read_size: int) -> Iterator[bytes]:
    """Stream a big file's content and padding, refusing a file whose size changed.

    The last read carries a one-byte probe, which a file that grew since the scan fills.
    """
    with _source(entry) as fd:
        remaining = entry.size
        while remaining:
            space = blocks.space(min(read_size, remaining))
            n = os.readv(fd, [space, bytearray(1)] if len(space) == remaining else [space])
            if not n or n > remaining:
                raise _changed(entry)
            remaining -= n
            blocks.advance(n)
            yield from blocks.take()
    blocks.put(bytes(-entry.size % 512))


@contextlib.contextmanager
def _source(entry: Entry) -> Iterator[int]:
    """The entry's file, open for reading, with what changed since the scan refused.

    O_NOFOLLOW refuses a file swapped for a symlink; O_NONBLOCK keeps one swapped for a FIFO
    or a device from blocking, and reading it then fails the size check or lands here.
    """
    if entry.source is None:
        raise ValueError(f"file entry {entry.name} has no source")
    try:
        fd = os.open(entry.source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            yield fd
        finally:
            os.close(fd)
    except (IsADirectoryError, BlockingIOError):
        raise _changed(entry) from None
    except FileNotFoundError:
        raise BuildError(
            f"failed to write a layer: {entry.source} was removed while it was being archived",
            hint="stop whatever is changing the directory and build again") from None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise BuildError(
            f"failed to write a layer: {entry.source} was replaced by a symlink while it was "
            "being archived", hint="stop whatever is changing the directory and build again",
        ) from None


def _changed(entry: Entry) -> BuildError:
    return BuildError(
        f"failed to write a layer: {entry.source} changed size while it was being archived "
        f"(expected {entry.size} bytes for {entry.name})",
        hint="stop whatever is writing into the directory and build again",
    )


def _headers(entry: Entry, mtime: int) -> bytes:
    """The tar header(s) of one entry: a PAX header first when ustar cannot hold it."""
    name = entry.name
    if entry.kind == "file" and name.isascii() and len(name) <= 100 and entry.size <= _MAX_OCTAL_11:
        # Most entries of a big tree; this skips the general path's per-entry work.
        return _ustar(name.encode("ascii"), entry.mode & 0o7777, entry.size, mtime, b"0", b"")
    typeflag, link, size = {
        "file": (b"0", "", entry.size),
        "dir": (b"5", "", 0),
        "symlink": (b"2", entry.target, 0),
        "hardlink": (b"1", entry.target, 0),
    }[entry.kind]
    if link is None:
        raise ValueError(f"{entry.kind} entry {entry.name} has no target")
    name = entry.name + "/" if entry.kind == "dir" else entry.name
    raw_name, raw_link = _utf8(name), _utf8(link)
    pax: list[bytes] = []
    if len(raw_name) > 100 or not name.isascii():
        pax.append(_pax_record("path", raw_name))
    if len(raw_link) > 100 or not link.isascii():
        pax.append(_pax_record("linkpath", raw_link))
    if size > _MAX_OCTAL_11:
        pax.append(_pax_record("size", b"%d" % size))
    ustar = _ustar(
        _placeholder(raw_name),
        entry.mode & 0o7777,
        min(size, _MAX_OCTAL_11) if pax else size,
        mtime,
        typeflag,
        _placeholder(raw_link),
    )
    if not pax:
        return ustar
    records = b"".join(pax)  # keys are added in a fixed order: path, linkpath, size
    padding = bytes(-len(records) % 512)
    return (
        _ustar(b"././@PaxHeader", 0o644, len(records), mtime, b"x", b"") + records + padding + ustar
    )


_ZERO_ID = b"0000000\0"  # uid, gid, devmajor and devminor are all zero
_MAGIC = b"ustar\x0000"
# The checksum is the sum of all header bytes with its own field read as spaces. Only the
# name, mode, size, mtime, type and link vary, so the rest is summed once here: summing all
# 512 bytes was most of the cost of a header.
_FIXED_SUM = sum(_ZERO_ID * 4 + b" " * 8 + _MAGIC)


def _ustar(name: bytes, mode: int, size: int, mtime: int, typeflag: bytes, link: bytes) -> bytes:
    fields = (b"%07o\0" % mode, b"%011o\0" % size, b"%011o\0" % mtime)
    checksum = _FIXED_SUM + sum(name) + sum(link) + typeflag[0] + sum(map(sum, fields))
    mode_field, size_field, mtime_field = fields
    return b"".join(
        (
            name.ljust(100, b"\0"),
            mode_field,
            _ZERO_ID,  # uid
            _ZERO_ID,  # gid
            size_field,
            mtime_field,
            b"%06o\0 " % checksum,
            typeflag,
            link.ljust(100, b"\0"),
            _MAGIC,
            bytes(64),  # uname, gname
            _ZERO_ID,  # devmajor
            _ZERO_ID,  # devminor
            bytes(167),  # prefix (unused: long names go to PAX) and padding
        )
    )


def _pax_record(key: str, value: bytes) -> bytes:
    """One ``"<len> key=value\\n"`` record; the length counts its own digits."""
    body = b" %s=%s\n" % (key.encode("ascii"), value)
    length = len(body) + len(str(len(body)))
    if len(str(length)) > len(str(len(body))):
        length += 1
    return b"%d%s" % (length, body)


def _placeholder(raw: bytes) -> bytes:
    """An ASCII stand-in that fits the ustar field; readers take the real value from PAX."""
    return raw.decode("utf-8").encode("ascii", "replace")[:100] if not raw.isascii() else raw[:100]


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise BuildError(
            f"failed to write a layer: the name {text!r} is not valid UTF-8",
            hint="rename the file; image layers carry UTF-8 names",
        ) from None
