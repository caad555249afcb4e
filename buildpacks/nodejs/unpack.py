"""Unpacking an npm tarball into a layer without trusting its entries.

npm packs everything under ``package/``; that prefix is stripped. An entry that would land
outside the destination (absolute, ``..``), a symlink or hard link pointing outside it, and
anything that is not a file, a directory or a link (devices, FIFOs) fail the build instead of
being skipped: a registry that serves them is not to be trusted with the rest either. Modes
keep only the permission bits (no setuid, setgid or sticky).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
from pathlib import Path

from lifecycle.errors import BuildpackFailed

PREFIX = "package/"


def unpack(tarball: Path, dest: Path, *, what: str) -> None:
    """Extract ``tarball`` (gzip) into ``dest``, refusing entries that escape it."""
    dest.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(dest)
    links: list[tuple[str, str]] = []
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for info in tar:
                rel = _relative(info.name, what)
                if rel is None:
                    continue
                target = os.path.join(root, rel)
                if info.isdir():
                    os.makedirs(target, exist_ok=True)
                elif info.isfile():
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    _check_parents(root, target, what, info.name)
                    source = tar.extractfile(info)
                    assert source is not None
                    if os.path.lexists(target):
                        os.unlink(target)
                    with source, open(target, "wb") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
                    os.chmod(target, (info.mode & 0o777) | 0o600)
                elif info.issym() or info.islnk():
                    # Links are made last, so no file is ever written through one.
                    link = info.linkname
                    if info.islnk():
                        link = _relative(link, what) or ""
                        link = posixpath.relpath(link, posixpath.dirname(rel) or ".")
                    _check_link(rel, link, what, info.name)
                    links.append((rel, link))
                else:
                    raise _refused(what, info.name, "is not a file, directory or link")
        for rel, link in links:
            target = os.path.join(root, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            _check_parents(root, target, what, rel)
            if os.path.lexists(target):
                os.unlink(target)
            os.symlink(link, target)
        # Each link was checked on its own; a chain through another link could still lead out,
        # so the finished tree is checked as a whole.
        for rel, link in links:
            resolved = os.path.realpath(os.path.join(root, rel))
            if resolved != root and not resolved.startswith(root + os.sep):
                raise _refused(what, PREFIX + rel, f"is a link to {link!r}, which leads outside "
                                                   "the layer through another link")
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise BuildpackFailed(f"failed to unpack {what} ({tarball.name}): {exc}",
                              hint="the download is damaged; run the build again") from exc


def _relative(name: str, what: str) -> str | None:
    """The entry's path under the destination; None for the ``package`` directory itself."""
    if name.startswith("/") or "\\" in name:
        raise _refused(what, name, "has an absolute or Windows path")
    if ".." in name.split("/"):
        # npm never packs one; judging where it would lead is not worth the risk.
        raise _refused(what, name, "climbs out with '..'")
    normal = posixpath.normpath(name)
    if normal in (".", "package"):
        return None
    if not normal.startswith(PREFIX):
        raise _refused(what, name, "is outside package/")
    return normal.removeprefix(PREFIX)


def _check_link(rel: str, link: str, what: str, name: str) -> None:
    if not link or link.startswith("/"):
        raise _refused(what, name, f"is a link to the absolute path {link!r}")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), link))
    if resolved == ".." or resolved.startswith("../"):
        raise _refused(what, name, f"is a link to {link!r}, outside the package")


def _check_parents(root: str, target: str, what: str, name: str) -> None:
    """A file must not be written through a directory that resolves outside the root."""
    parent = os.path.realpath(os.path.dirname(target))
    if parent != root and not parent.startswith(root + os.sep):
        raise _refused(what, name, "would be written outside the layer through a link")


def _refused(what: str, name: str, why: str) -> BuildpackFailed:
    return BuildpackFailed(f"failed to unpack {what}: the entry {name!r} {why}",
                           hint="the registry served a hostile or broken tarball; check the "
                                "registry in your npm configuration")
