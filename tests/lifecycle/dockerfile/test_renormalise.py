"""Renormalising the engine's layers: what changes, what is kept exactly, what is dropped."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from lifecycle.dockerfile import renormalise
from lifecycle.errors import DockerfileBuildFailed
from lifecycle.image import tarball

CREATED = 315532801
LATER = 1_700_000_000
CAPABILITY = b"\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"


def info(name: str, type_: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = type_
    member.mtime = LATER
    for key, value in fields.items():
        setattr(member, key, value)
    return member


def write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in members:
            member.size = len(data) if member.type == tarfile.REGTYPE else 0
            tar.addfile(member, io.BytesIO(data) if data else None)
    return path


def engine_layer(path: Path, *, reverse: bool = False, mtime: int = LATER) -> Path:
    xattr = {"SCHILY.xattr.security.capability": CAPABILITY.decode("utf-8", "surrogateescape")}
    members = [
        (info("usr/", tarfile.DIRTYPE, mode=0o755), b""),
        (info("usr/bin/", tarfile.DIRTYPE, mode=0o755), b""),
        (info("usr/bin/ping", mode=0o4755, uid=0, gid=0, pax_headers=xattr), b"ELF"),
        (info("srv/z-owned", mode=0o640, uid=1000, gid=1000, uname="app", gname="app"), b"mine"),
        (info("srv/a-link", tarfile.LNKTYPE, linkname="srv/z-owned"), b""),
        (info("etc/.wh.removed"), b""),
        (info("opt/.wh..wh..opq"), b""),
        (info("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666), b""),
        (info("run/fifo", tarfile.FIFOTYPE, mode=0o600), b""),
        (info("old-file", mtime=100), b"old"),
        (info("deep/" + "d" * 120 + "/é-long-name"), b"long"),
        (info("big-uid", uid=3_000_000, gid=3_000_001), b"id"),
        (info("var/log/dpkg.log"), b"2026-12-06 11:00:00 status installed"),
        (info("var/log/apt/", tarfile.DIRTYPE), b""),
        (info("var/log/apt/history.log"), b"Start-Date: 2026"),
        (info("var/lib/apt/lists/deb.debian.org_Packages"), b"Package: x"),
        (info("var/cache/apt/pkgcache.bin"), b"bin"),
        (info("var/cache/debconf/config.dat-old"), b"old"),
        (info("var/cache/debconf/config.dat"), b"kept"),
        (info("var/log/apt/.wh.eipp.log.xz"), b""),
        (info("var/cache/ldconfig/aux-cache"), b"aux"),
        (info("keep/alternatives.log"), b"not the leftover"),
        (info("var/log/alternatives.log"), b"leftover"),
        (info("z-link-to-leftover", tarfile.LNKTYPE, linkname="var/log/alternatives.log"), b""),
    ]
    for member, _ in members:
        if member.name != "old-file":
            member.mtime = mtime
    return write_tar(path, members[::-1] if reverse else members)


def renormalised(source: Path, out: Path) -> tuple[list[tarfile.TarInfo], list[str], Path]:
    members, dropped = renormalise.plan(source, CREATED)
    out.write_bytes(b"".join(renormalise.tar_stream(source, members)))
    with tarfile.open(out) as tar:
        return tar.getmembers(), dropped, out


def test_owners_modes_xattrs_devices_and_whiteouts_are_kept(tmp_path: Path) -> None:
    got, _, _ = renormalised(engine_layer(tmp_path / "in.tar"), tmp_path / "out.tar")
    by_name = {m.name: m for m in got}
    ping = by_name["usr/bin/ping"]
    assert ping.mode == 0o4755
    assert ping.pax_headers["SCHILY.xattr.security.capability"].encode(
        "utf-8", "surrogateescape") == CAPABILITY
    owned = by_name["srv/z-owned"]
    assert (owned.uid, owned.gid, owned.mode, owned.uname) == (1000, 1000, 0o640, "")
    assert (by_name["big-uid"].uid, by_name["big-uid"].gid) == (3_000_000, 3_000_001)
    assert (by_name["dev/null"].type, by_name["dev/null"].devmajor,
            by_name["dev/null"].devminor) == (tarfile.CHRTYPE, 1, 3)
    assert by_name["run/fifo"].type == tarfile.FIFOTYPE
    assert {"etc/.wh.removed", "opt/.wh..wh..opq", "var/log/apt/.wh.eipp.log.xz"} <= set(by_name)
    assert "deep/" + "d" * 120 + "/é-long-name" in by_name
    assert by_name["old-file"].mtime == 100 and by_name["srv/z-owned"].mtime == CREATED


def test_entries_are_sorted_and_hard_links_follow_their_file(tmp_path: Path) -> None:
    got, _, out = renormalised(engine_layer(tmp_path / "in.tar"), tmp_path / "out.tar")
    names = [m.name for m in got]
    assert names == sorted(names, key=lambda n: n.encode())
    by_name = {m.name: m for m in got}
    # "srv/a-link" sorts first, so it carries the content; the old file becomes the link.
    assert by_name["srv/a-link"].isfile() and by_name["srv/a-link"].uid == 1000
    assert by_name["srv/z-owned"].islnk() and by_name["srv/z-owned"].linkname == "srv/a-link"
    # A link to a dropped leftover keeps the content itself.
    assert by_name["z-link-to-leftover"].isfile() and by_name["z-link-to-leftover"].size == 8
    listing = subprocess.run(["tar", "-tvf", str(out)], capture_output=True, text=True,
                             check=True).stdout
    assert "srv/z-owned link to srv/a-link" in listing


def test_leftovers_are_dropped_but_their_directories_stay(tmp_path: Path) -> None:
    got, dropped, _ = renormalised(engine_layer(tmp_path / "in.tar"), tmp_path / "out.tar")
    assert sorted(dropped) == sorted([
        "var/log/dpkg.log", "var/log/apt/history.log", "var/lib/apt/lists/deb.debian.org_Packages",
        "var/cache/apt/pkgcache.bin", "var/cache/debconf/config.dat-old",
        "var/cache/ldconfig/aux-cache", "var/log/alternatives.log"])
    names = {m.name for m in got}
    assert {"var/log/apt", "var/cache/debconf/config.dat", "keep/alternatives.log"} <= names


def test_order_and_build_times_do_not_change_the_blob(tmp_path: Path) -> None:
    blobs = set()
    for number, (reverse, mtime) in enumerate(((False, LATER), (True, LATER + 999))):
        source = engine_layer(tmp_path / f"in-{number}.tar", reverse=reverse, mtime=mtime)
        members, _ = renormalise.plan(source, CREATED)
        blob = tarball.write_tar(renormalise.tar_stream(source, members), tmp_path / "blobs")
        blobs.add((blob.digest, blob.diff_id))
    assert len(blobs) == 1


def test_a_broken_engine_tar_is_an_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tar"
    broken.write_bytes(b"not a tar at all" * 64)
    with pytest.raises(DockerfileBuildFailed, match="failed to read a layer"):
        renormalise.plan(broken, CREATED)
