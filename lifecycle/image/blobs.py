"""A content-addressed blob directory, ``root/sha256/<hex>``, for the store, caches and sinks.

Every write goes to a temporary file in the same directory (named ``.tmp-<pid>-<8 hex>``,
the team's convention), is flushed with ``fsync`` and then renamed over the final name, so a
name ``sha256/<hex>`` never holds a partial file, whatever kills the writer. Finished blobs
are made read-only because they may be hard links shared with other blob directories.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from lifecycle.errors import ExportError

ALGORITHM = "sha256"
CHUNK = 1 << 20
_HEX_RE = re.compile(r"[0-9a-f]{64}")
_DIGEST_RE = re.compile(r"sha256:([0-9a-f]{64})")
_TEMP_RE = re.compile(r"\.tmp-(\d+)-[0-9a-f]{8}")
_BLOB_MODE = 0o444


def digest_of(data: bytes) -> str:
    """The ``sha256:<hex>`` digest of ``data``."""
    return f"{ALGORITHM}:{hashlib.sha256(data).hexdigest()}"


def hex_of(digest: str) -> str:
    """The hex part of a ``sha256:<hex>`` digest; raise ``ValueError`` for anything else."""
    match = _DIGEST_RE.fullmatch(digest)
    if match is None:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return match.group(1)


class Digest(str):
    """A ``sha256:<hex>`` digest; a ``str``, so JSON and comparisons see the plain text."""

    __slots__ = ()

    @property
    def hex(self) -> str:
        """The hex part (a blob's file name)."""
        return hex_of(self)

    @property
    def short(self) -> str:
        """``sha256:`` and the first 12 hex digits, as logs and listings show a digest."""
        return self[:19]


def temp_name() -> str:
    """A fresh temporary file name that records this process's pid."""
    return f".tmp-{os.getpid()}-{secrets.token_hex(4)}"


def temp_pid(path: Path) -> int | None:
    """The writer pid encoded in a temporary file's name, or ``None`` for other names."""
    match = _TEMP_RE.fullmatch(path.name)
    return int(match.group(1)) if match else None


def find_temps(directory: Path) -> list[Path]:
    """Temporary files left in ``directory`` (not recursive), sorted."""
    try:
        return sorted(p for p in directory.iterdir() if temp_pid(p) is not None)
    except FileNotFoundError:
        return []


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts as alive until reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_temps(directory: Path) -> list[Path]:
    """Delete the temporary files of ``directory`` whose writer is dead; return them.

    Caveat: liveness is judged by pid on this host. A recycled pid keeps a dead writer's temp
    until that pid is free again (harmless: it only delays cleanup), and writers in another
    pid namespace or on another host sharing the directory must not run concurrently.
    """
    removed: list[Path] = []
    for path in find_temps(directory):
        pid = temp_pid(path)
        if pid is not None and pid != os.getpid() and not pid_alive(pid):
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path)
    return removed


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry change (a rename) to disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` through a synced temporary file in the same directory."""
    temp = path.parent / temp_name()
    try:
        # Created with ``mode`` already (not chmod-ed after writing), so a private file such
        # as cached credentials is never readable by others, even for a moment.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        with open(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


class BlobDir:
    """Blobs named by their digest under ``root/sha256/``; it is also a ``BlobSource``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.directory = self.root / ALGORITHM

    def __repr__(self) -> str:
        return f"BlobDir({str(self.root)!r})"

    def path(self, digest: str) -> Path:
        """Where the blob ``digest`` lives (whether or not it exists)."""
        return self.directory / hex_of(digest)

    def has(self, digest: str) -> bool:
        """Whether the blob is present."""
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        """The blob's size in bytes."""
        return self.path(digest).stat().st_size

    def open(self, digest: str) -> BinaryIO:
        """Open the blob for reading (``FileNotFoundError`` when absent)."""
        return open(self.path(digest), "rb")

    def read(self, digest: str) -> bytes:
        """The blob's whole content; for small blobs such as manifests and configs."""
        return self.path(digest).read_bytes()

    def local_path(self, digest: str) -> Path | None:
        """The blob's file, for sinks that can link or copy it without reading it in Python."""
        path = self.path(digest)
        return path if path.is_file() else None

    def temp_path(self) -> Path:
        """A fresh temporary path beside the blobs, named after this process."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / temp_name()

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its digest."""
        digest, _ = self.put_stream([data])
        return digest

    def put_stream(self, chunks: Iterable[bytes], expected: str | None = None) -> tuple[str, int]:
        """Store the concatenated ``chunks``; return (digest, size).

        With ``expected``, a content whose digest differs raises ``ExportError`` and leaves
        nothing behind.
        """
        if expected is not None and self.has(expected):
            # Content addressing makes the stored copy as good as a new one; do not read it.
            return expected, self.size(expected)
        temp = self.temp_path()
        hasher = hashlib.sha256()
        size = 0
        try:
            with open(temp, "xb") as out:
                for chunk in chunks:
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = f"{ALGORITHM}:{hasher.hexdigest()}"
            if expected is not None and digest != expected:
                raise ExportError(
                    f"failed to store blob {expected}: its content has digest {digest}",
                    hint="the source is corrupt or changed while being read",
                )
            self._commit(temp, digest)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return digest, size

    def put_file(self, src: Path | str, digest: str | None = None) -> str:
        """Store the file ``src``; return its digest.

        When ``src`` is itself a content-addressed blob (its name is the hex of its digest)
        on the same filesystem, the blob becomes a hard link to it; otherwise it is copied.
        A given ``digest`` is checked either way.
        """
        src = Path(src)
        if digest is not None and self.has(digest):
            return digest
        expected = digest
        if _HEX_RE.fullmatch(src.name) and (digest is None or src.name == hex_of(digest)):
            # A link shares the inode, so the content is checked before linking; copies
            # below are checked while they stream instead, reading the source once.
            actual = file_digest(src)
            if digest is not None and actual != digest:
                raise ExportError(
                    f"failed to store blob {digest} from {src}: its content has digest {actual}",
                    hint="the file is corrupt or changed while being read",
                )
            if self.has(actual):
                return actual
            if src.name == hex_of(actual) and self._link(src, actual):
                return actual
            expected = actual
        with open(src, "rb") as handle:
            stored, _ = self.put_stream(iter(lambda: handle.read(CHUNK), b""), expected)
        return stored

    def remove(self, digest: str) -> int:
        """Delete the blob if present; return the bytes freed."""
        path = self.path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def digests(self) -> Iterator[str]:
        """Every stored digest, in sorted order."""
        try:
            names = sorted(p.name for p in self.directory.iterdir())
        except FileNotFoundError:
            return
        for name in names:
            if _HEX_RE.fullmatch(name):
                yield f"{ALGORITHM}:{name}"

    def verify(self, digest: str) -> bool:
        """Whether the blob exists and its content still matches its digest."""
        try:
            return file_digest(self.path(digest)) == digest
        except FileNotFoundError:
            return False

    def temps(self) -> list[Path]:
        """Temporary files currently beside the blobs."""
        return find_temps(self.directory)

    def recover(self) -> list[Path]:
        """Delete temporary files whose writer is dead; return them (see ``recover_temps``)."""
        return recover_temps(self.directory)

    def _commit(self, temp: Path, digest: str, *, chmod: bool = True) -> None:
        if chmod:
            os.chmod(temp, _BLOB_MODE)
        os.replace(temp, self.path(digest))

    def _link(self, src: Path, digest: str) -> bool:
        # Link to a temp name first, then rename: os.link onto the final name would fail
        # with EEXIST if a concurrent writer got there first, which is equally fine.
        temp = self.temp_path()
        try:
            os.link(src, temp)
        except OSError as error:
            if error.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                return False
            raise
        try:
            # The inode is shared with the source: its mode is the source owner's business.
            self._commit(temp, digest, chmod=False)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return True


def file_digest(path: Path | str) -> str:
    """``sha256:<hex>`` of a file's content, read in chunks."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
    return f"{ALGORITHM}:{hasher.hexdigest()}"
