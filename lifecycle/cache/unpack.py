"""Unpack a layer blob from a cache image back into a layer directory, trusting nothing in it.

The blob's digest was checked when it was fetched; its uncompressed bytes must also hash to
the DiffID the image config gives. A cache image is written by this lifecycle, so every entry
must sit under the layer's own ``layers/<buildpack>/<layer>/`` prefix (its parent directories
aside) and be a file, a directory, a symlink or a hard link to an earlier file of the layer.
Anything else refuses the whole layer, and nothing is left behind: the files go to a fresh
directory that replaces the layer's only once all of them are written.

Symlinks are kept verbatim (layers hold links such as a venv's ``python -> /usr/bin/python3``)
but are made last, and no file is ever written through one: every file and directory is
created with ``O_NOFOLLOW``-style checks under a parent this module made itself.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

from isal import igzip, isal_zlib

from lifecycle.errors import LifecycleError

# isal's stubs declare its error an instance; at run time it is the exception class.
_ISAL_ERROR = cast("type[Exception]", isal_zlib.error)

# Far beyond any real cache layer's entry count; a hostile tar of empty entries stops here.
MAX_ENTRIES = 2_000_000


class UnpackRefused(LifecycleError):
    """The layer holds something a cache layer never does."""

    exit_code = 51


def unpack(blob: BinaryIO, prefix: str, dest: Path, diff_id: str) -> None:
    """Extract the gzip layer ``blob`` whose entries live under ``prefix`` into ``dest``.

    ``dest`` must not exist; it appears only when the whole layer was extracted and its
    DiffID matched. Raises :class:`UnpackRefused` (nothing left behind) otherwise. The caller
    holds the project's lock, so a half-unpacked directory beside ``dest`` is a killed
    build's, and is removed first.
    """
    for stale in dest.parent.glob(f".unpacking-{dest.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    temp = dest.with_name(f".unpacking-{dest.name}-{os.getpid()}")
    temp.mkdir(mode=0o755)
    try:
        actual = _extract(blob, prefix.strip("/"), temp)
        if actual != diff_id:
            raise UnpackRefused(f"its content has DiffID {actual}, not {diff_id}")
        os.rename(temp, dest)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


class _Hashing:
    """A file object that hashes what is read through it (the tar's DiffID)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hasher = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.hasher.update(data)
        return data


def _extract(blob: BinaryIO, prefix: str, root: Path) -> str:
    try:
        # isal, as the layer writer uses: several times zlib's speed on a large cache layer.
        with igzip.GzipFile(fileobj=blob, mode="rb") as plain:
            hashing = _Hashing(plain)  # type: ignore[arg-type]
            links: list[tuple[str, str, bool]] = []
            count = 0
            with tarfile.open(fileobj=hashing, mode="r|") as tar:  # type: ignore[call-overload]
                for info in tar:
                    count += 1
                    if count > MAX_ENTRIES:
                        raise UnpackRefused(f"it has more than {MAX_ENTRIES} entries")
                    rel = _relative(info.name, prefix)
                    if rel is None:
                        continue
                    if info.isdir():
                        _make_dirs(root, rel, info.mode)
                    elif info.isreg():
                        _write_file(root, rel, info.mode, tar.extractfile(info))
                    elif info.issym():
                        links.append((rel, info.linkname, True))
                    elif info.islnk():
                        target = _relative(info.linkname, prefix)
                        if target is None:
                            raise UnpackRefused(f"{info.name!r} is a hard link to "
                                                f"{info.linkname!r}, outside the layer")
                        links.append((rel, target, False))
                    else:
                        raise UnpackRefused(f"{info.name!r} is not a file, directory or link")
            # Read to the end: the DiffID covers the tar's padding blocks too.
            while hashing.read(1 << 20):
                pass
            # Hard links first, while the tree holds no symlink at all: a link's source is
            # then a file of the layer or nothing, never a host file reached through a link.
            for rel, target, symbolic in sorted(links, key=lambda link: link[2]):
                parent = _make_dirs(root, posixpath.dirname(rel), 0o755)
                path = parent / posixpath.basename(rel)
                if os.path.lexists(path):
                    raise UnpackRefused(f"{rel!r} appears twice")
                if symbolic:
                    os.symlink(target, path)
                    continue
                source = root / target
                real = os.path.realpath(source)
                if not os.path.lexists(source) or not stat.S_ISREG(os.lstat(source).st_mode) \
                        or real != os.path.join(os.path.realpath(root), *_parts(target)):
                    raise UnpackRefused(f"{rel!r} is a hard link to {target!r}, which is "
                                        "not a file of the layer")
                os.link(source, path, follow_symlinks=False)
            return "sha256:" + hashing.hasher.hexdigest()
    except (OSError, tarfile.TarError, EOFError, zlib.error, _ISAL_ERROR) as error:
        if isinstance(error, UnpackRefused):
            raise
        raise UnpackRefused(f"it is not a readable layer ({error})") from error


def _relative(name: str, prefix: str) -> str | None:
    """The entry's path inside the layer; None for the prefix's own parents and itself."""
    if name.startswith("/") or "\\" in name or "\0" in name:
        raise UnpackRefused(f"{name!r} is an absolute or odd path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnpackRefused(f"{name!r} climbs out with '..'")
    path = "/".join(parts)
    if path == prefix or prefix.startswith(path + "/"):
        return None
    if not path.startswith(prefix + "/"):
        raise UnpackRefused(f"{name!r} is outside {prefix}/")
    return path[len(prefix) + 1:]


def _parts(rel: str) -> Iterator[str]:
    for part in rel.split("/"):
        if part:
            yield part


def _make_dirs(root: Path, rel: str, mode: int) -> Path:
    """Create ``rel``'s directories under ``root``, refusing to pass through anything else."""
    path = root
    for part in _parts(rel):
        path = path / part
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode):
            raise UnpackRefused(f"{rel!r} passes through {part!r}, which is not a directory")
    if rel:
        # Owner keeps write and search: the next build's buildpack updates the cache.
        os.chmod(path, (mode & 0o777) | 0o700)
    return path


def _write_file(root: Path, rel: str, mode: int, source: BinaryIO | None) -> None:
    if source is None:
        raise UnpackRefused(f"{rel!r} has no content")
    parent = _make_dirs(root, posixpath.dirname(rel), 0o755)
    path = parent / posixpath.basename(rel)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise UnpackRefused(f"{rel!r} appears twice") from None
    with source, open(fd, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    # Permission bits only: no setuid, setgid or sticky from a cache image.
    os.chmod(path, (mode & 0o777) | 0o600)
