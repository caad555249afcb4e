"""Read files that the app or the user names, without hanging, leaking or reading too much.

An app tree is input from whoever wrote it: its ``Procfile`` may be a FIFO (opening it for
reading blocks until a writer comes), its ``package.json`` a symlink to a file of the build
host, its ``.nvmrc`` a device. Every read of a path named by the app or the user goes through
here, so that one place decides what may be read:

- only regular files: FIFOs, sockets and devices are refused before they are opened for real
  (the open is non-blocking, so a FIFO swapped in between cannot block either);
- with ``root`` (the app directory), only files whose real path is inside ``root``, so a
  symlink cannot make the builder read (and perhaps ship) a file of the build host;
- at most ``limit`` bytes, so a huge or endless file cannot exhaust memory.

Refusals are :class:`UnsafeFile`, an ``OSError``, so callers that already turn ``OSError``
into their own message keep doing so, and ``exc.strerror`` says why.
"""

from __future__ import annotations

import errno
import os
import stat

# Manifests, lock files and descriptors are far below this; a bigger one is a mistake or an
# attack, and reading it whole into memory would hurt either way.
DEFAULT_LIMIT = 64 * 1024 * 1024

_KINDS = {
    stat.S_IFSOCK: "a socket",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory",
}


class UnsafeFile(OSError):
    """A path the builder refuses to read: not a regular file, outside its root, or too big."""


def inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Whether ``path``'s real path is ``root``'s real path or below it."""
    real = os.path.realpath(path)
    base = os.path.realpath(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def read_bytes(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None,
               limit: int = DEFAULT_LIMIT) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, inside ``root`` when given."""
    name = os.fspath(path)
    if root is not None:
        if not inside(name, root):
            raise UnsafeFile(errno.EXDEV, "it leads outside the app directory", name)
        name = os.path.realpath(name)
    _check_regular(os.stat(name), name, limit)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    if root is not None:
        flags |= os.O_NOFOLLOW  # the real path has no link left; a new one is a swap
    fd = os.open(name, flags)
    try:
        _check_regular(os.fstat(fd), name, limit)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew since fstat
                raise UnsafeFile(errno.EFBIG, f"it is larger than {limit} bytes", name)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None,
              limit: int = DEFAULT_LIMIT, errors: str = "strict") -> str:
    """:func:`read_bytes` decoded as UTF-8 (``errors`` as for ``bytes.decode``)."""
    return read_bytes(path, root=root, limit=limit).decode("utf-8", errors)


def is_regular(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None
               ) -> bool:
    """Whether ``path`` is a regular file (inside ``root`` when given) that could be read."""
    try:
        if root is not None and not inside(path, root):
            return False
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _check_regular(st: os.stat_result, name: str, limit: int) -> None:
    fmt = stat.S_IFMT(st.st_mode)
    if fmt != stat.S_IFREG:
        kind = _KINDS.get(fmt, "a special file")
        raise UnsafeFile(errno.EINVAL, f"it is {kind}, not a regular file", name)
    if st.st_size > limit:
        raise UnsafeFile(errno.EFBIG, f"it is larger than {limit} bytes", name)


def describe(exc: OSError) -> str:
    """A short reason for a failed read: ours, or the system's (``Permission denied``…)."""
    return exc.strerror or str(exc)

