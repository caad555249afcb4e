"""How blobs are trusted: a ledger of checked stamps, re-hashing when a stamp moved, removal of
corrupt blobs, links that keep both ledgers current, and bytes freed only at the last link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lifecycle.errors import ExportError
from lifecycle.image import blobs as blobs_mod
from lifecycle.image import tarball, tree
from lifecycle.image.blobs import BlobDir, Ledger, file_digest, stamp_of
from tests.infra import oci_images


def ledgered(root: Path) -> BlobDir:
    return BlobDir(root / "blobs", root / "stamps")


def flip(path: Path, offset: int = 10, keep_mtime: bool = True) -> None:
    """Flip one byte in place, as bit rot or a careless edit does, restoring the mtime."""
    oci_images.flip(path, offset, keep_mtime=keep_mtime)


@pytest.fixture
def no_hashing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count every content hash (file_digest) the blob module does."""
    calls: list[str] = []
    real = blobs_mod.file_digest

    def counting(path: Path | str) -> str:
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(blobs_mod, "file_digest", counting)
    return calls


def test_a_blob_with_its_recorded_stamp_is_not_read_again(tmp_path: Path,
                                                          no_hashing: list[str]) -> None:
    store = ledgered(tmp_path)
    digest = store.put_bytes(b"x" * 5000)
    again = ledgered(tmp_path)  # a new process: the ledger is read from its file
    assert again.has(digest) and again.local_path(digest) == again.path(digest)
    assert no_hashing == []
    assert Ledger(tmp_path / "stamps").get(digest[7:]) == stamp_of(store.path(digest).stat())


@pytest.mark.parametrize("attack", ["flip", "flip-new-mtime", "truncate", "swap-inode",
                                    "chmod-only", "foreign-ledger-line"])
def test_a_moved_stamp_is_hashed_again_and_a_bad_blob_removed(
        tmp_path: Path, attack: str, no_hashing: list[str]) -> None:
    store = ledgered(tmp_path)
    data = os.urandom(20_000)
    digest = store.put_bytes(data)
    path = store.path(digest)
    good = attack in ("chmod-only", "foreign-ledger-line")
    if attack == "flip":
        flip(path)
    elif attack == "flip-new-mtime":
        flip(path, keep_mtime=False)
    elif attack == "truncate":
        path.chmod(0o644)
        os.truncate(path, 100)
    elif attack == "swap-inode":
        # Same size and mtime, other content, another inode: only the inode and ctime tell.
        before = path.stat()
        swapped = tmp_path / "swapped"
        swapped.write_bytes(bytes(len(data)))
        os.utime(swapped, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(swapped, path)
    elif attack == "chmod-only":
        path.chmod(0o400)
    else:
        with open(tmp_path / "stamps", "ab") as ledger:
            # Junk, a short line, a forged stamp (the last line wins), a torn last line.
            ledger.write(b"not a line\n" + b"f" * 64 + b" 1 2 3\n"
                         + digest[7:].encode() + b" 1 2 3 4\n" + digest[7:].encode())
    check = ledgered(tmp_path)
    assert check.has(digest) is good
    assert len(no_hashing) == 1
    assert path.exists() is good
    if good:
        assert ledgered(tmp_path).has(digest) and len(no_hashing) == 1  # recorded again
    else:
        # The next writer stores a good copy under the name, and it is trusted again.
        assert store.put_bytes(data) == digest and ledgered(tmp_path).has(digest)
        assert path.read_bytes() == data


def test_a_layer_written_over_a_corrupt_blob_replaces_it_and_is_read_only(
        tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "file.txt").write_text("hello\n" * 1000)
    entries = tree.scan(app, prefix="var/task", confine=True)
    cache = ledgered(tmp_path)
    blob = tarball.write_layer(entries, cache)
    assert stat.S_IMODE(blob.path.stat().st_mode) == 0o444
    flip(blob.path, offset=blob.size // 2)
    again = tarball.write_layer(entries, ledgered(tmp_path))
    assert again.digest == blob.digest and file_digest(again.path) == blob.digest
    assert stat.S_IMODE(again.path.stat().st_mode) == 0o444
    plain = tarball.write_layer(entries, tmp_path / "plain")
    assert stat.S_IMODE(plain.path.stat().st_mode) == 0o444


def test_linking_keeps_both_ledgers_current(tmp_path: Path, no_hashing: list[str]) -> None:
    cache, store = ledgered(tmp_path / "cache"), ledgered(tmp_path / "store")
    digest = cache.put_bytes(b"shared" * 1000)
    store.put_blob(cache, digest)
    assert store.path(digest).stat().st_ino == cache.path(digest).stat().st_ino
    assert no_hashing == []  # the source's stamp vouched for it
    assert ledgered(tmp_path / "cache").has(digest) and ledgered(tmp_path / "store").has(digest)
    assert no_hashing == []


def test_linking_refuses_a_corrupt_source_with_a_clear_message(tmp_path: Path) -> None:
    cache, store = ledgered(tmp_path / "cache"), ledgered(tmp_path / "store")
    digest = cache.put_bytes(b"shared" * 1000)
    flip(cache.path(digest))
    with pytest.raises(ExportError, match=r"the copy in .*cache.* is missing or corrupt"):
        ledgered(tmp_path / "store").put_blob(ledgered(tmp_path / "cache"), digest)
    assert not store.present(digest)


def test_a_corrupt_blob_in_a_directory_without_ledger_is_refused_before_linking(
        tmp_path: Path) -> None:
    foreign, store = BlobDir(tmp_path / "layout"), ledgered(tmp_path / "store")
    digest = foreign.put_bytes(b"base layer" * 100)
    flip(foreign.path(digest))
    with pytest.raises(ExportError, match="its content has digest"):
        store.put_blob(foreign, digest)


def test_removing_counts_bytes_only_when_the_last_link_goes(tmp_path: Path) -> None:
    cache, store = ledgered(tmp_path / "cache"), ledgered(tmp_path / "store")
    digest = cache.put_bytes(b"z" * 10_000)
    store.put_blob(cache, digest)
    assert store.remove(digest) == 0
    assert cache.remove(digest) == 10_000
    assert cache.remove(digest) == 0


def test_compaction_keeps_only_named_stamps(tmp_path: Path) -> None:
    store = ledgered(tmp_path)
    kept, dropped = store.put_bytes(b"kept"), store.put_bytes(b"dropped")
    store.remove(dropped)
    assert store.ledger is not None
    store.ledger.compact(d[7:] for d in store.digests())
    assert set(Ledger(tmp_path / "stamps").stamps()) == {kept[7:]}


def test_a_vanished_source_blob_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    store = ledgered(tmp_path / "store")
    digest = "sha256:" + "0" * 64
    for source in (ledgered(tmp_path / "cache"), BlobDir(tmp_path / "layout")):
        with pytest.raises(ExportError, match="is missing or corrupt"):
            store.put_blob(source, digest)
    assert not store.present(digest) and store.temps() == []
