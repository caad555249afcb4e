"""Tests for lifecycle.image.tarball: a hostile tree read back by tar, tarfile, gzip and umoci."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle.errors import BuildError
from lifecycle.image import tarball
from lifecycle.image.tarball import BLOCK, DEFAULT_MTIME, Blob, tar_bytes_iter, write_layer
from lifecycle.image.tree import Entry, scan

PREFIX = "var/task"
LONG_DIR = "d" * 60 + "/" + "e" * 60  # a path component pair over 100 bytes
DEEP_DIR = "/".join(c * 90 for c in "pqr")  # three levels, over 255 bytes in all


def hostile_app(root: Path) -> Path:
    """A tree with what breaks naive tar writers; the same content wherever it is built."""
    rng = random.Random(7)
    files = {
        "index.js": b"exports.handler = async () => ({ statusCode: 200 });\n",
        "private.key": b"secret\n",
        "bin/tool": b"#!/bin/sh\necho tool\n",
        "bin/suid": b"\x7fELF-ish\n",
        "exactly-512.bin": bytes(range(256)) * 2,
        "empty-file": b"",
        "big/blob.bin": rng.randbytes(BLOCK + BLOCK // 2 + 3),
        # Compressible text that spans a block boundary, so it lands in two gzip members.
        "big/text.txt": b"".join(
            b"line %d of a repetitive log\n" % (i % 977) for i in range(99_000)
        ),
        f"{LONG_DIR}/over-100.txt": b"long name\n",
        f"{DEEP_DIR}/{'s' * 90}.txt": b"very long name\n",
        "héllo wörld ☃.txt": b"unicode\n",
        "日本語/ファイル.txt": b"japanese\n",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o644)
    (root / "private.key").chmod(0o600)
    (root / "bin/tool").chmod(0o755)
    (root / "bin/suid").chmod(0o4755)
    (root / "empty-dir").mkdir()
    os.link(root / "index.js", root / "index-hardlink.js")
    (root / "to-index").symlink_to("index.js")
    (root / "bin/to-long").symlink_to(f"../{DEEP_DIR}/{'s' * 90}.txt")  # a link target over 100
    (root / "日本語/リンク").symlink_to("ファイル.txt")
    for directory in (p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()):
        directory.chmod(0o755)
    root.chmod(0o755)
    return root


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """The hostile tree under a temporary directory."""
    return hostile_app(tmp_path / "app")


@pytest.fixture
def entries(app: Path) -> list[Entry]:
    """The hostile tree scanned for /var/task."""
    return scan(app, prefix=PREFIX)


@pytest.fixture
def blob(entries: list[Entry], tmp_path: Path) -> Blob:
    """The hostile tree written as a layer."""
    return write_layer(entries, tmp_path / "blobs")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tar_name(entry: Entry) -> str:
    """The name an entry carries in the tar, as readers report it."""
    return entry.name + "/" if entry.kind == "dir" else entry.name


# --- the blob itself --------------------------------------------------------------------------


def test_the_blob_is_named_by_its_digest_and_both_digests_are_right(
    blob: Blob, tmp_path: Path
) -> None:
    assert blob.path == tmp_path / "blobs" / blob.digest.removeprefix("sha256:")
    assert blob.digest == f"sha256:{sha256_file(blob.path)}"
    assert blob.size == blob.path.stat().st_size
    raw = blob.path.read_bytes()
    assert blob.diff_id == f"sha256:{hashlib.sha256(gzip.decompress(raw)).hexdigest()}"
    assert blob.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert os.listdir(tmp_path / "blobs") == [blob.path.name]  # no temp file left behind


def test_the_gzip_stream_has_a_fixed_header_and_passes_gzip_t(blob: Blob) -> None:
    # Magic, deflate, no flags (so no file name), mtime 0, XFL 4, OS 255.
    assert blob.path.read_bytes()[:10] == bytes.fromhex("1f8b08000000000004ff")
    subprocess.run(["gzip", "-t", str(blob.path)], check=True)


def test_the_compressed_stream_holds_exactly_the_tar_stream(
    blob: Blob, entries: list[Entry]
) -> None:
    expected = b"".join(tar_bytes_iter(entries))
    assert gzip.decompress(blob.path.read_bytes()) == expected
    assert len(expected) % 512 == 0
    assert expected.endswith(bytes(1024))


def test_tar_bytes_come_in_fixed_size_blocks(entries: list[Entry]) -> None:
    sizes = [len(b) for b in tar_bytes_iter(entries, read_size=4099)]
    assert len(sizes) >= 2
    assert set(sizes[:-1]) == {BLOCK}
    assert 0 < sizes[-1] <= BLOCK


def test_each_block_of_tar_is_one_gzip_member(blob: Blob, entries: list[Entry]) -> None:
    import zlib

    expected = list(tar_bytes_iter(entries))
    data, members = blob.path.read_bytes(), []
    while data:
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)  # exactly one gzip member
        members.append(member.decompress(data))
        assert member.eof
        data = member.unused_data
    assert len(expected) >= 2 and members == expected


def test_the_compressor_is_recorded_with_its_pinned_version() -> None:
    import isal

    assert tarball.COMPRESSOR == f"isal-{isal.__version__}/gzip-{tarball.LEVEL}/members-of-1MiB"


# --- readers agree ----------------------------------------------------------------------------


def test_gnu_tar_lists_every_entry_in_order(blob: Blob, entries: list[Entry]) -> None:
    listing = subprocess.run(
        ["tar", "-tzf", str(blob.path)], check=True, capture_output=True, text=True
    ).stdout
    assert listing.splitlines() == [tar_name(e) for e in entries]
    verbose = subprocess.run(
        ["tar", "--numeric-owner", "--full-time", "-tvzf", str(blob.path)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "TZ": "UTC"},
    ).stdout.splitlines()
    assert all(" 0/0 " in line and " 1980-01-01 00:00:01 " in line for line in verbose)
    assert verbose[[e.name for e in entries].index(f"{PREFIX}/bin/suid")].startswith("-rwsr-xr-x")


def test_tarfile_reads_back_exactly_what_was_given(blob: Blob, entries: list[Entry]) -> None:
    types = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
    }
    with tarfile.open(blob.path, "r:gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [e.name for e in entries]
        for member, entry in zip(members, entries, strict=True):
            assert member.type == types[entry.kind], entry.name
            assert member.mode == entry.mode, entry.name
            assert member.size == entry.size, entry.name
            assert member.linkname == (entry.target or ""), entry.name
            assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
            assert member.mtime == DEFAULT_MTIME
            assert (member.devmajor, member.devminor) == (0, 0)
            if entry.kind == "file":
                extracted = tar.extractfile(member)
                assert extracted is not None
                assert extracted.read() == Path(str(entry.source)).read_bytes(), entry.name
            # Only the names that ustar cannot hold get a PAX header, and it holds no times.
            needs_pax = not (
                tar_name(entry).isascii()
                and len(tar_name(entry).encode()) <= 100
                and (entry.target or "").isascii()
                and len((entry.target or "").encode()) <= 100
            )
            assert bool(member.pax_headers) == needs_pax, entry.name
            assert set(member.pax_headers) <= {"path", "linkpath"}


def test_the_fixture_really_is_hostile(entries: list[Entry]) -> None:
    by_kind = {
        kind: [e for e in entries if e.kind == kind]
        for kind in ("file", "dir", "symlink", "hardlink")
    }
    lengths = [len(e.name.encode()) for e in entries]
    assert max(lengths) > 255 and any(100 < n <= 255 for n in lengths)
    assert any(not e.name.isascii() for e in entries)
    assert any(len(str(e.target).encode()) > 100 for e in by_kind["symlink"])
    assert by_kind["hardlink"]
    assert {0o600, 0o755, 0o4755} <= {e.mode for e in by_kind["file"]}
    assert any(e.size > BLOCK for e in by_kind["file"])
    assert any(e.size > 2 * BLOCK and e.name.endswith(".txt") for e in by_kind["file"])


# --- umoci unpacks it, file by file ------------------------------------------------------------


def oci_layout(layout: Path, blob: Blob) -> None:
    """A minimal one-layer OCI image around ``blob`` (which already lives in layout/blobs)."""

    def put(document: dict[str, object]) -> tuple[str, int]:
        data = json.dumps(document, sort_keys=True).encode()
        digest = hashlib.sha256(data).hexdigest()
        (layout / "blobs/sha256" / digest).write_bytes(data)
        return f"sha256:{digest}", len(data)

    config_digest, config_size = put(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [blob.diff_id]},
        }
    )
    manifest_digest, manifest_size = put(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_size,
            },
            "layers": [{"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}],
        }
    )
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": manifest_digest,
                        "size": manifest_size,
                        "annotations": {"org.opencontainers.image.ref.name": "hostile"},
                    }
                ],
            }
        )
    )


def walk(root: Path) -> Iterator[str]:
    """Every path under ``root``, relative, without following symlinks."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            yield os.path.relpath(os.path.join(dirpath, name), root)


def test_umoci_unpacks_exactly_the_entries_given(entries: list[Entry], tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    blob = write_layer(entries, layout / "blobs/sha256")
    oci_layout(layout, blob)
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:hostile", str(bundle)],
        check=True,
        capture_output=True,
    )
    rootfs = bundle / "rootfs"
    assert sorted(walk(rootfs)) == sorted(e.name for e in entries)
    for entry in entries:
        path = rootfs / entry.name
        st = path.lstat()
        if entry.kind == "dir":
            assert stat.S_ISDIR(st.st_mode), entry.name
        elif entry.kind == "symlink":
            assert os.readlink(path) == entry.target, entry.name
            continue  # a link's own mode means nothing on Linux
        elif entry.kind == "file":
            assert stat.S_ISREG(st.st_mode), entry.name
            assert sha256_file(path) == sha256_file(Path(str(entry.source))), entry.name
        else:
            assert path.samefile(rootfs / str(entry.target)), entry.name
            assert st.st_nlink == 2
        assert stat.S_IMODE(st.st_mode) == entry.mode, entry.name
    assert list((rootfs / PREFIX / "empty-dir").iterdir()) == []


# --- reproducible ------------------------------------------------------------------------------


def test_the_same_entries_give_the_same_blob_every_time(
    entries: list[Entry], blob: Blob, tmp_path: Path
) -> None:
    again = write_layer(entries, tmp_path / "elsewhere")
    assert (again.digest, again.diff_id, again.size) == (blob.digest, blob.diff_id, blob.size)
    assert again.path.read_bytes() == blob.path.read_bytes()


def test_the_same_content_in_another_directory_gives_the_same_blob(
    blob: Blob, tmp_path: Path
) -> None:
    other = hostile_app(tmp_path / "a" / "completely" / "different" / "place")
    again = write_layer(scan(other, prefix=PREFIX), tmp_path / "other-blobs")
    assert (again.digest, again.diff_id) == (blob.digest, blob.diff_id)


@pytest.mark.parametrize("read_size", [1, 511, 4096, 65_537, 3 * BLOCK])
def test_read_sizes_do_not_change_the_blob(
    entries: list[Entry], blob: Blob, tmp_path: Path, read_size: int
) -> None:
    small = [e for e in entries if e.size < 200_000] if read_size == 1 else entries
    reference = write_layer(small, tmp_path / "reference") if read_size == 1 else blob
    again = write_layer(small, tmp_path / f"read-{read_size}", read_size=read_size)
    assert again.digest == reference.digest
    assert again.diff_id == reference.diff_id


def test_the_mtime_is_the_callers(entries: list[Entry], blob: Blob, tmp_path: Path) -> None:
    later = write_layer(entries, tmp_path / "later", mtime=1_700_000_000)
    assert later.digest != blob.digest
    with tarfile.open(later.path, "r:gz") as tar:
        assert {m.mtime for m in tar.getmembers()} == {1_700_000_000}


@pytest.mark.parametrize("mtime", [-1, 8**11])
def test_an_mtime_tar_cannot_hold_is_refused(
    entries: list[Entry], tmp_path: Path, mtime: int
) -> None:
    with pytest.raises(BuildError, match="SOURCE_DATE_EPOCH"):
        write_layer(entries, tmp_path / "bad", mtime=mtime)
    assert os.listdir(tmp_path / "bad") == []


def test_writing_a_blob_that_exists_keeps_one_file(entries: list[Entry], blob: Blob) -> None:
    before = blob.path.stat().st_ino
    again = write_layer(entries, blob.path.parent)
    assert again == blob
    assert os.listdir(blob.path.parent) == [blob.path.name]
    assert blob.path.stat().st_ino == before


def test_no_entries_make_an_empty_archive(tmp_path: Path) -> None:
    empty = write_layer([], tmp_path)
    assert gzip.decompress(empty.path.read_bytes()) == bytes(1024)
    subprocess.run(["gzip", "-t", str(empty.path)], check=True)


# --- refusing to write a corrupt layer ---------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    ["grow", "shrink", "replace-with-symlink", "small-grows", "small-shrinks",
     "replace-with-fifo", "replace-with-directory"],
)
def test_a_file_that_changed_since_the_scan_is_refused(
    app: Path, entries: list[Entry], tmp_path: Path, change: str
) -> None:
    # A big file takes several reads; a small one is read in one call with the growth probe.
    small = change.startswith(("small", "replace-with-fifo", "replace-with-directory"))
    victim = app / ("private.key" if small else "big/blob.bin")
    if change.endswith("grows") or change == "grow":
        with open(victim, "ab") as f:
            f.write(b"more")
    elif change.endswith("shrinks") or change == "shrink":
        os.truncate(victim, 10)
    elif change == "replace-with-fifo":
        victim.unlink()
        os.mkfifo(victim)  # opening it must not block the build
    elif change == "replace-with-directory":
        victim.unlink()
        victim.mkdir()
    else:
        victim.unlink()
        victim.symlink_to(app / "index.js")
    dest = tmp_path / "dest"
    with pytest.raises((BuildError, OSError)) as caught:
        write_layer(entries, dest)
    if change != "replace-with-symlink":  # O_NOFOLLOW refuses the open itself
        assert isinstance(caught.value, BuildError)
        assert str(victim) in str(caught.value)
        assert "changed size" in str(caught.value)
    assert os.listdir(dest) == []  # neither a temp file nor a blob


def test_the_temp_file_follows_the_team_naming_convention(
    entries: list[Entry], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renamed: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        renamed.append((Path(src).name, Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    written = write_layer(entries, tmp_path)
    [(temp_name, final_name)] = renamed
    tag, pid, token = temp_name.split("-")
    assert (tag, pid) == (".tmp", str(os.getpid()))
    assert len(token) == 8 and int(token, 16) >= 0
    assert final_name == written.path.name


def test_a_file_removed_or_swapped_for_a_link_after_the_scan_is_a_build_error(
        tmp_path: Path) -> None:
    from lifecycle.errors import BuildError
    from lifecycle.image import tree

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    out = tmp_path / "out"
    entries = tree.scan(src, prefix="var/task")
    (src / "a.txt").unlink()
    with pytest.raises(BuildError, match=r"a\.txt was removed while it was being archived"):
        write_layer(entries, out)
    (src / "a.txt").symlink_to("/etc/hostname")
    with pytest.raises(BuildError, match=r"a\.txt was replaced by a symlink"):
        write_layer(entries, out)
    assert list(out.iterdir()) == []  # no temporary file is left behind
