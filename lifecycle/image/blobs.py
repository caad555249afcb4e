"""A content-addressed blob directory, ``root/sha256/<hex>``, for the store, caches and sinks.

Every write goes to a temporary file in the same directory (named ``.tmp-<pid>-<8 hex>``,
the team's convention), is flushed with ``fsync`` and then renamed over the final name, so a
name ``sha256/<hex>`` never holds a partial file, whatever kills the writer. Finished blobs
are made read-only (mode 0444) because they may be hard links shared with other blob
directories.

How a blob is trusted (docs/reference.md, "How blobs are trusted"): a directory with a
*ledger* (the store, the build cache) records, for every blob whose content it hashed, the
stamp ``(inode, size, mtime_ns, ctime_ns)`` it had then. A blob is trusted by its name only
while its stamp is the recorded one; any write to the file, a ``chmod``, a new hard link or an
unlink of another name moves its ctime, and a swapped file has another inode, so the blob is
hashed again before it is reused or linked. A blob whose content no longer matches its name
is removed, so that the next writer stores a good copy from its source. Directories without
a ledger (a user's ``oci:`` layout) trust names, and their blobs are hashed whenever they are
linked into a directory with a ledger.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Container, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from lifecycle import paths
from lifecycle.errors import ExportError

ALGORITHM = "sha256"
CHUNK = 1 << 20
_HEX_RE = re.compile(r"[0-9a-f]{64}")
_DIGEST_RE = re.compile(r"sha256:([0-9a-f]{64})")
_TEMP_RE = re.compile(r"\.tmp-(\d+)-[0-9a-f]{8}")
_BLOB_MODE = 0o444
TEMP_DIRS = "temp-dirs"
"""The file under the store home listing directories outside store and cache we write temps in."""

Stamp = tuple[int, int, int, int]
"""``(inode, size, mtime_ns, ctime_ns)`` of a blob file when its content was last hashed."""

log = logging.getLogger("hybridless")


def stamp_of(st: os.stat_result) -> Stamp:
    """The stamp of a file's ``stat`` result."""
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


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


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` through a temporary file in the same directory.

    Every writer of a file that others read whole uses this, so that one temp name
    convention (``temp_name``) covers them all and recovery finds what a killed writer left.
    ``durable=False`` skips the fsyncs, for files that only save time (records, receipts).
    """
    temp = path.parent / temp_name()
    try:
        # Created with ``mode`` already (not chmod-ed after writing), so a private file such
        # as cached credentials is never readable by others, even for a moment.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        with open(fd, "wb") as out:
            out.write(data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def temp_journal(home: Path | None = None) -> Path:
    """The list of outside directories we write temporary files in, under the store home."""
    return (home if home is not None else paths.store_home()) / TEMP_DIRS


@contextlib.contextmanager
def _journal_locked(journal: Path) -> Iterator[int]:
    journal.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(journal, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def _journal_dirs(fd: int) -> list[str]:
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while chunk := os.read(fd, CHUNK):
        data += chunk
    return list(dict.fromkeys(line for line in data.decode("utf-8", "surrogateescape")
                              .split("\n") if line))


def note_temp_dir(directory: Path, journal: Path | None = None) -> None:
    """Remember that temps are written in ``directory``, so ``gc`` can recover them there.

    Archive and ``oci:`` sinks write beside a destination the user chose, outside the store
    and the cache; a writer killed there leaves a temp that only this list leads back to.
    """
    directory = Path(os.path.abspath(directory))
    if "\n" in str(directory):
        return  # one line per directory; such a name cannot be listed
    try:
        with _journal_locked(journal or temp_journal()) as fd:
            if str(directory) not in _journal_dirs(fd):
                os.write(fd, os.fsencode(f"{directory}\n"))
    except OSError as error:  # the list only helps cleanup; the write itself goes on
        log.debug("cannot note temp directory %s: %s", directory, error)


def recover_noted(journal: Path | None = None) -> list[Path]:
    """Delete dead writers' temps in every noted directory; forget directories left clean."""
    removed: list[Path] = []
    journal = journal or temp_journal()
    if not journal.is_file():
        return removed
    with _journal_locked(journal) as fd:
        kept = []
        for line in _journal_dirs(fd):
            directory = Path(line)
            removed.extend(recover_temps(directory))
            if find_temps(directory):
                kept.append(line)
        os.ftruncate(fd, 0)
        if kept:
            os.write(fd, os.fsencode("".join(f"{line}\n" for line in kept)))
    return removed


class Ledger:
    """The stamps of blobs whose content was hashed, in one append-only file.

    Each line is ``<hex> <inode> <size> <mtime_ns> <ctime_ns>``; the last line for a blob
    wins. Appends are single small writes with ``O_APPEND``, so concurrent writers do not
    interleave; a torn or unknown line is ignored, which only costs one more hash.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._stamps: dict[str, Stamp] | None = None

    def stamps(self) -> dict[str, Stamp]:
        """Every recorded stamp by hex digest (read once per instance)."""
        if self._stamps is None:
            self._stamps = {}
            try:
                text = self.path.read_bytes().decode("ascii", "replace")
            except FileNotFoundError:
                text = ""
            for line in text.split("\n")[:-1]:  # the last piece is unterminated or empty
                fields = line.split(" ")
                if len(fields) == 5 and _HEX_RE.fullmatch(fields[0]) and \
                        all(f.isdigit() for f in fields[1:]):
                    ino, size, mtime, ctime = (int(f) for f in fields[1:])
                    self._stamps[fields[0]] = (ino, size, mtime, ctime)
        return self._stamps

    def get(self, hexdigest: str) -> Stamp | None:
        """The recorded stamp of a blob, if any."""
        return self.stamps().get(hexdigest)

    def record(self, hexdigest: str, stamp: Stamp) -> None:
        """Record that the blob with this stamp was hashed and matched its name."""
        if self.stamps().get(hexdigest) == stamp:
            return
        self._stamps = {**self.stamps(), hexdigest: stamp}
        line = f"{hexdigest} {' '.join(str(n) for n in stamp)}\n".encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # end a torn line, so that this one reads whole
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as error:  # an unrecorded stamp only costs a hash next time
            log.debug("cannot record a blob stamp in %s: %s", self.path, error)

    def compact(self, keep: Iterable[str]) -> None:
        """Rewrite the file with the stamps of ``keep`` only (callers hold the exclusive lock)."""
        wanted = set(keep)
        stamps = {h: s for h, s in self.stamps().items() if h in wanted}
        text = "".join(f"{h} {' '.join(str(n) for n in s)}\n" for h, s in sorted(stamps.items()))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, text.encode(), durable=False)
        self._stamps = stamps


class BlobDir:
    """Blobs named by their digest under ``root/sha256/``; it is also a ``BlobSource``.

    With a ``ledger``, a blob is trusted by its name only while its stamp is the one
    recorded when it was last hashed (see the module docstring).
    """

    def __init__(self, root: Path | str, ledger: Path | str | None = None) -> None:
        self.root = Path(root)
        self.directory = self.root / ALGORITHM
        self.ledger = Ledger(ledger) if ledger is not None else None

    def __repr__(self) -> str:
        return f"BlobDir({str(self.root)!r})"

    def path(self, digest: str) -> Path:
        """Where the blob ``digest`` lives (whether or not it exists)."""
        return self.directory / hex_of(digest)

    def present(self, digest: str) -> bool:
        """Whether a file of that name is present (its content unchecked)."""
        return self.path(digest).is_file()

    def has(self, digest: str) -> bool:
        """Whether the blob is present and trusted; a corrupt one is removed (see ``trusted``)."""
        return self.trusted(digest)

    def trusted(self, digest: str) -> bool:
        """Whether the blob is present with good content, hashing it only when its stamp moved.

        A blob found corrupt is removed (with a warning), so that the caller stores a good
        copy from its source under the same name.
        """
        path = self.path(digest)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return False
        if self.ledger is None:
            return path.is_file()
        if self.ledger.get(hex_of(digest)) == stamp_of(st):
            return True
        try:
            actual = file_digest(path)
        except (FileNotFoundError, IsADirectoryError):
            return False
        if actual != digest:
            self.discard(digest, actual)
            return False
        self.record(digest, path.stat())
        return True

    def record(self, digest: str, st: os.stat_result | None = None) -> None:
        """Record the blob's current stamp as checked (callers just hashed or wrote it)."""
        if self.ledger is not None:
            try:
                st = st if st is not None else self.path(digest).stat()
            except FileNotFoundError:
                return
            self.ledger.record(hex_of(digest), stamp_of(st))

    def discard(self, digest: str, actual: str) -> None:
        """Remove a blob whose content has digest ``actual``, saying so."""
        log.warning("blob %s in %s is corrupt (its content has digest %s); removed, a good "
                    "copy is written again from its source", digest, self.root, actual)
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

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
        """The blob's file, for sinks that can link or copy it without reading it in Python.

        With a ledger it is checked as ``trusted`` does (a corrupt blob gives ``None``).
        """
        return self.path(digest) if self.trusted(digest) else None

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
            # A trusted copy is as good as a new one; do not read it.
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

    def put_blob(self, source: BlobDir, digest: str) -> None:
        """Store blob ``digest`` from another blob directory: a hard link when possible.

        A source with a ledger is trusted by its stamp (no read when it did not move); one
        without is hashed before linking, as ``put_file`` does.
        """
        if self.has(digest):
            return
        if source.ledger is None and source.present(digest):
            self.put_file(source.path(digest), digest)
            return
        if not source.trusted(digest):
            raise ExportError(
                f"failed to store blob {digest}: the copy in {source.root} is missing or corrupt",
                hint="build again: the layer is written anew from its source",
            )
        if self._link(source.path(digest), digest):
            # The link moved the shared inode's ctime; the source hashed it just before.
            source.record(digest)
            return
        with source.open(digest) as handle:
            self.put_stream(iter(lambda: handle.read(CHUNK), b""), digest)

    def adopt(self, temp: Path, digest: str) -> Path:
        """Make ``temp`` (a finished, synced file in this directory) the blob ``digest``.

        A trusted blob of that name is kept and ``temp`` deleted; a missing or corrupt one is
        replaced, so a rebuilt layer always repairs its blob.
        """
        final = self.path(digest)
        if self.has(digest):
            temp.unlink(missing_ok=True)
            return final
        self._commit(temp, digest)
        fsync_dir(self.directory)
        return final

    def remove(self, digest: str) -> int:
        """Delete the blob if present; return the bytes this really freed on disk.

        A blob hard-linked from another directory frees nothing until its last name goes,
        so its size counts only when this was the last link.
        """
        path = self.path(digest)
        try:
            st = path.stat()
            path.unlink()
        except FileNotFoundError:
            return 0
        return st.st_size if st.st_nlink <= 1 else 0

    def sweep(self, keep: Container[str]) -> tuple[int, tuple[str, ...]]:
        """Remove every blob not in ``keep`` and forget their stamps; return the bytes freed
        and the digests removed. The caller holds whatever lock keeps writers out."""
        removed: list[str] = []
        freed = 0
        for digest in list(self.digests()):
            if digest not in keep:
                freed += self.remove(digest)
                removed.append(digest)
        if self.ledger is not None:
            self.ledger.compact(d.partition(":")[2] for d in self.digests())
        return freed, tuple(removed)

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
        """Whether the blob exists and its content matches its digest (always read; a good
        blob's stamp is recorded again)."""
        path = self.path(digest)
        try:
            before = path.stat()
            good = file_digest(path) == digest
        except FileNotFoundError:
            return False
        if good:
            self.record(digest, before)
        return good

    def temps(self) -> list[Path]:
        """Temporary files currently beside the blobs."""
        return find_temps(self.directory)

    def recover(self) -> list[Path]:
        """Delete temporary files whose writer is dead; return them (see ``recover_temps``)."""
        return recover_temps(self.directory)

    def _commit(self, temp: Path, digest: str, *, chmod: bool = True) -> None:
        # Callers wrote or hashed the content just before: its stamp after the rename is the
        # one to trust (a rename moves the ctime).
        if chmod:
            os.chmod(temp, _BLOB_MODE)
        os.replace(temp, self.path(digest))
        self.record(digest)

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
