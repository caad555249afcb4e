"""Re-tar a layer the Docker engine wrote so that it is reproducible, keeping what it means.

Changed: entries are sorted by name (UTF-8 bytes), times are clamped to the image's
``created``, user and group names are dropped (the numeric ids are what runtimes apply),
and the blob gets our gzip framing. Kept exactly: uid and gid, modes (setuid and friends
included), extended attributes (``security.capability``...), hard links, device numbers and
whiteouts (``.wh.`` entries). Dropped: files that package managers rewrite with the time of
the build (:data:`LEFTOVERS`). Hard links are re-pointed when sorting moves a link before
the file it names: the first name in the new order carries the content, as tar requires.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import DockerfileBuildFailed

LEFTOVERS = (
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/log/apt/*",
    "var/cache/ldconfig/aux-cache",
    "var/lib/apt/lists/*",
    "var/cache/apt/*.bin",
    "var/cache/debconf/*-old",
)
"""Files a Dockerfile's package installs leave behind whose bytes record when they ran."""

_WHITEOUT = ".wh."
_TYPES = {
    tarfile.REGTYPE: b"0", tarfile.AREGTYPE: b"0", tarfile.LNKTYPE: b"1", tarfile.SYMTYPE: b"2",
    tarfile.CHRTYPE: b"3", tarfile.BLKTYPE: b"4", tarfile.DIRTYPE: b"5", tarfile.FIFOTYPE: b"6",
    tarfile.CONTTYPE: b"0",
}
_MAX_ID = 0o7777777
_MAX_SIZE = 8**11 - 1
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Member:
    """One entry of the layer as it will be written."""

    name: str
    typeflag: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    link: str
    devmajor: int
    devminor: int
    xattrs: tuple[tuple[str, bytes], ...]
    offset: int
    """Where the content starts in the source tar (regular files only)."""


def dropped(name: str) -> bool:
    """Whether ``name`` is a package-manager leftover that records build times."""
    base = name.rsplit("/", 1)[-1]
    if base.startswith(_WHITEOUT):
        return False  # a whiteout deletes a lower file; dropping it would bring that back
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in LEFTOVERS)


def plan(tar_path: Path, created: int) -> tuple[list[Member], list[str]]:
    """The members to write, in order, and the names dropped as leftovers."""
    try:
        with tarfile.open(tar_path, "r:") as source:
            infos = source.getmembers()
    except (tarfile.TarError, OSError) as exc:
        raise DockerfileBuildFailed(f"failed to read a layer the engine wrote: {exc}",
                                    hint="check the engine's disk and retry") from exc
    members: dict[str, Member] = {}
    files: dict[str, Member] = {}  # every regular file, leftovers too: links may name them
    links: dict[str, str] = {}  # hard link name -> the name it points at
    leftovers: list[str] = []
    for info in infos:
        name = _clean(info.name)
        if not name:
            continue
        if info.type not in _TYPES:
            raise DockerfileBuildFailed(f"failed to read a layer the engine wrote: {name} has "
                                        f"the unknown tar type {info.type!r}")
        typeflag = _TYPES[info.type]
        xattrs = tuple(sorted(
            (key, value.encode("utf-8", "surrogateescape"))
            for key, value in info.pax_headers.items() if key.startswith("SCHILY.xattr.")))
        member = Member(
            name=name, typeflag=typeflag, mode=info.mode & 0o7777, uid=info.uid, gid=info.gid,
            size=info.size if typeflag == b"0" else 0, mtime=max(0, min(int(info.mtime), created)),
            link=info.linkname if typeflag in (b"1", b"2") else "",
            devmajor=info.devmajor if typeflag in (b"3", b"4") else 0,
            devminor=info.devminor if typeflag in (b"3", b"4") else 0,
            xattrs=xattrs, offset=info.offset_data if typeflag == b"0" else 0)
        if typeflag == b"0":
            files[name] = member
        elif typeflag == b"1":
            links[name] = _clean(info.linkname)
        if typeflag != b"5" and dropped(name):
            leftovers.append(name)
            continue
        members[name] = member
    ordered = sorted(members.values(), key=lambda m: m.name.encode("utf-8", "surrogateescape"))
    return _relink(ordered, links, files), leftovers


def _relink(ordered: list[Member], links: dict[str, str], files: dict[str, Member]
            ) -> list[Member]:
    """Make the first name of each hard-link group the file and the others links to it."""
    if not links:
        return ordered
    root_of: dict[str, str] = {}
    for link, target in links.items():
        root, hops = target, 0
        while root in links and hops < len(links):
            root, hops = links[root], hops + 1
        root_of[link] = root
        root_of.setdefault(root, root)
    first: dict[str, str] = {}
    out: list[Member] = []
    for member in ordered:
        root = root_of.get(member.name, "")
        data = files.get(root)
        if data is None:
            out.append(member)  # not linked, or linked to a file this layer lacks: as written
        elif root not in first:
            first[root] = member.name
            out.append(_with(data, name=member.name))
        else:
            out.append(_with(data, name=member.name, typeflag=b"1", link=first[root], size=0,
                             offset=0))
    return out


def _with(member: Member, **changes: object) -> Member:
    return dataclasses.replace(member, **changes)  # type: ignore[arg-type]


def tar_stream(tar_path: Path, members: list[Member]) -> Iterator[bytes]:
    """The renormalised tar: each member's header(s), content and padding, then the end."""
    fd = os.open(tar_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        for member in members:
            yield header(member)
            remaining, offset = member.size, member.offset
            while remaining:
                data = os.pread(fd, min(_CHUNK, remaining), offset)
                if not data:
                    raise DockerfileBuildFailed(f"failed to re-tar a layer: {member.name} is "
                                                "cut short in the engine's tar")
                remaining -= len(data)
                offset += len(data)
                yield data
            if member.size % 512:
                yield bytes(512 - member.size % 512)
        yield bytes(1024)
    finally:
        os.close(fd)


def header(member: Member) -> bytes:
    """The ustar header of ``member``, after a PAX header when ustar cannot hold it all."""
    name = member.name + ("/" if member.typeflag == b"5" else "")
    raw_name = name.encode("utf-8", "surrogateescape")
    raw_link = member.link.encode("utf-8", "surrogateescape")
    records: list[bytes] = []
    if len(raw_name) > 100 or not raw_name.isascii():
        records.append(_record(b"path", raw_name))
    if len(raw_link) > 100 or not raw_link.isascii():
        records.append(_record(b"linkpath", raw_link))
    if member.size > _MAX_SIZE:
        records.append(_record(b"size", b"%d" % member.size))
    if member.uid > _MAX_ID:
        records.append(_record(b"uid", b"%d" % member.uid))
    if member.gid > _MAX_ID:
        records.append(_record(b"gid", b"%d" % member.gid))
    for key, value in member.xattrs:
        records.append(_record(key.encode("utf-8", "surrogateescape"), value))
    ustar = _ustar(_fit(raw_name), member.mode, min(member.size, _MAX_SIZE), member.mtime,
                   member.typeflag, _fit(raw_link), min(member.uid, _MAX_ID),
                   min(member.gid, _MAX_ID), member.devmajor, member.devminor)
    if not records:
        return ustar
    body = b"".join(records)
    return (_ustar(b"././@PaxHeader", 0o644, len(body), member.mtime, b"x", b"", 0, 0, 0, 0)
            + body + bytes(-len(body) % 512) + ustar)


def _ustar(name: bytes, mode: int, size: int, mtime: int, typeflag: bytes, link: bytes,
           uid: int, gid: int, devmajor: int, devminor: int) -> bytes:
    head = b"".join((
        name.ljust(100, b"\0"), b"%07o\0" % mode, b"%07o\0" % uid, b"%07o\0" % gid,
        b"%011o\0" % size, b"%011o\0" % mtime, b" " * 8, typeflag, link.ljust(100, b"\0"),
        b"ustar\x0000", bytes(64), b"%07o\0" % devmajor, b"%07o\0" % devminor, bytes(167),
    ))
    checksum = b"%06o\0 " % sum(head)
    return head[:148] + checksum + head[156:]


def _record(key: bytes, value: bytes) -> bytes:
    body = b" %s=%s\n" % (key, value)
    length = len(body) + len(str(len(body)))
    if len(str(length)) > len(str(len(body))):
        length += 1
    return b"%d%s" % (length, body)


def _fit(raw: bytes) -> bytes:
    """A ustar field's stand-in for a value PAX carries in full."""
    return raw[:100] if raw.isascii() else raw.decode("utf-8", "replace").encode(
        "ascii", "replace")[:100]


def _clean(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")
