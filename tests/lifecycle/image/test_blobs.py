"""BlobDir: content addressing, atomic writes, hard links, temp recovery, verification."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle.errors import ExportError
from lifecycle.image.blobs import BlobDir, digest_of, hex_of, recover_temps, temp_pid, write_atomic


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_put_bytes_stores_under_the_digest_read_only(tmp_path: Path) -> None:
    blobs = BlobDir(tmp_path / "b")
    digest = blobs.put_bytes(b"hello")
    assert digest == sha(b"hello")
    assert blobs.path(digest) == tmp_path / "b" / "sha256" / hex_of(digest)
    assert blobs.has(digest) and blobs.read(digest) == b"hello"
    with blobs.open(digest) as handle:
        assert handle.read() == b"hello"
    assert stat.S_IMODE(blobs.path(digest).stat().st_mode) == 0o444
    assert blobs.local_path(digest) == blobs.path(digest)
    assert blobs.temps() == []


def test_put_stream_returns_digest_and_size_and_checks_expected(tmp_path: Path) -> None:
    blobs = BlobDir(tmp_path)
    chunks = [b"a" * 1000, b"b" * 5, b""]
    digest, size = blobs.put_stream(chunks)
    assert (digest, size) == (sha(b"a" * 1000 + b"b" * 5), 1005)
    with pytest.raises(ExportError, match="its content has digest"):
        blobs.put_stream([b"other"], expected=sha(b"not this"))
    assert not blobs.has(sha(b"other"))
    assert not blobs.has(sha(b"not this"))
    assert blobs.temps() == []


def test_put_stream_leaves_nothing_when_the_source_fails(tmp_path: Path) -> None:
    blobs = BlobDir(tmp_path)

    def failing() -> Iterator[bytes]:
        yield b"partial"
        raise OSError("source broke")

    with pytest.raises(OSError, match="source broke"):
        blobs.put_stream(failing())
    assert list(blobs.digests()) == [] and blobs.temps() == []


def test_put_file_hard_links_blob_named_files_and_copies_others(tmp_path: Path) -> None:
    data = b"layer bytes" * 1000
    digest = sha(data)
    named = tmp_path / "src" / hex_of(digest)
    named.parent.mkdir()
    named.write_bytes(data)
    plain = tmp_path / "plain.bin"
    plain.write_bytes(data + b"!")

    linked = BlobDir(tmp_path / "one")
    assert linked.put_file(named, digest) == digest
    assert linked.path(digest).stat().st_ino == named.stat().st_ino

    copied = BlobDir(tmp_path / "two")
    plain_digest = copied.put_file(plain)
    assert plain_digest == sha(data + b"!")
    assert copied.path(plain_digest).stat().st_ino != plain.stat().st_ino
    assert copied.read(plain_digest) == data + b"!"


def test_put_file_checks_the_given_digest(tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"content")
    blobs = BlobDir(tmp_path / "b")
    with pytest.raises(ExportError, match="has digest"):
        blobs.put_file(src, sha(b"something else"))
    assert list(blobs.digests()) == []


def test_digests_are_sorted_and_ignore_foreign_names(tmp_path: Path) -> None:
    blobs = BlobDir(tmp_path)
    stored = sorted(blobs.put_bytes(bytes([i])) for i in range(5))
    (blobs.directory / "README").write_text("not a blob")
    assert list(blobs.digests()) == stored


def test_verify_detects_corruption_and_absence(tmp_path: Path) -> None:
    blobs = BlobDir(tmp_path)
    digest = blobs.put_bytes(b"good")
    assert blobs.verify(digest)
    path = blobs.path(digest)
    path.chmod(0o644)
    path.write_bytes(b"evil")
    assert not blobs.verify(digest)
    assert not blobs.verify(sha(b"never stored"))


def test_temp_path_follows_the_team_convention(tmp_path: Path) -> None:
    temp = BlobDir(tmp_path).temp_path()
    assert temp.parent == tmp_path / "sha256"
    assert temp.name.startswith(f".tmp-{os.getpid()}-") and len(temp.name.split("-")[-1]) == 8
    assert temp_pid(temp) == os.getpid()


def test_recover_removes_only_dead_writers_temps(tmp_path: Path) -> None:
    blobs = BlobDir(tmp_path)
    blobs.directory.mkdir(parents=True)
    dead = blobs.directory / f".tmp-{dead_pid()}-0123abcd"
    mine = blobs.directory / f".tmp-{os.getpid()}-89abcdef"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        alive = blobs.directory / f".tmp-{sleeper.pid}-deadbeef"
        for path in (dead, mine, alive):
            path.write_bytes(b"partial")
        assert blobs.temps() == sorted([dead, mine, alive])
        assert blobs.recover() == [dead]
        assert blobs.temps() == sorted([mine, alive])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert blobs.recover() == [alive]


def test_write_atomic_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "index.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert recover_temps(tmp_path) == [] and sorted(tmp_path.iterdir()) == [target]


def test_bad_digests_are_refused(tmp_path: Path) -> None:
    blobs = BlobDir(tmp_path)
    for bad in ("sha256:xyz", "md5:" + "0" * 32, "sha256:" + "A" * 64, "../../etc/passwd"):
        with pytest.raises(ValueError):
            blobs.path(bad)
    assert digest_of(b"") == sha(b"")


def test_temporary_files_are_named_in_one_place() -> None:
    """Every writer takes its temp name from blobs.temp_name, the name recovery matches."""
    import re

    root = Path(__file__).resolve().parents[3] / "lifecycle"
    spelled = [f"{path.relative_to(root)}:{number}"
               for path in sorted(root.rglob("*.py")) if path.name != "blobs.py"
               for number, line in enumerate(path.read_text().splitlines(), 1)
               if re.search(r"""["']\.tmp-|\.tmp-\{""", line)]
    assert spelled == []
