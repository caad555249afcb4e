"""The one reader of app- and user-named files: regular files only, inside the app, bounded."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from lifecycle import safeio


def test_reads_a_regular_file_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "link").symlink_to("a.txt")
    assert safeio.read_text(tmp_path / "a.txt", root=tmp_path) == "hello"
    assert safeio.read_bytes(tmp_path / "link", root=tmp_path) == b"hello"
    assert safeio.is_regular(tmp_path / "link", root=tmp_path)


def test_a_fifo_is_refused_at_once_instead_of_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(safeio.UnsafeFile, match="FIFO"):
        safeio.read_bytes(tmp_path / "fifo")
    assert not safeio.is_regular(tmp_path / "fifo")


def test_devices_sockets_and_directories_are_refused(tmp_path: Path) -> None:
    with pytest.raises(safeio.UnsafeFile, match="character device"):
        safeio.read_bytes("/dev/zero")
    with pytest.raises(safeio.UnsafeFile, match="directory"):
        safeio.read_bytes(tmp_path)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock"))
        with pytest.raises(safeio.UnsafeFile, match="socket"):
            safeio.read_bytes(tmp_path / "sock")
    finally:
        sock.close()


@pytest.mark.parametrize("target", ["/etc/hostname", "../outside.txt"])
def test_a_link_out_of_the_root_is_refused(tmp_path: Path, target: str) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (tmp_path / "outside.txt").write_text("host secret")
    (app / "package.json").symlink_to(target)
    with pytest.raises(safeio.UnsafeFile, match="outside the app"):
        safeio.read_bytes(app / "package.json", root=app)
    assert not safeio.is_regular(app / "package.json", root=app)
    # A directory link out of the app does not help either.
    (app / "dir").symlink_to(tmp_path)
    with pytest.raises(safeio.UnsafeFile, match="outside the app"):
        safeio.read_bytes(app / "dir" / "outside.txt", root=app)


def test_a_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 101)
    with pytest.raises(safeio.UnsafeFile, match="larger than 100 bytes"):
        safeio.read_bytes(tmp_path / "big", limit=100)
    assert safeio.read_bytes(tmp_path / "big", limit=101) == b"x" * 101


def test_refusals_are_oserrors_with_a_reason(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError) as caught:
        safeio.read_bytes(tmp_path / "fifo")
    assert safeio.describe(caught.value) == "it is a FIFO, not a regular file"
    with pytest.raises(UnicodeDecodeError):
        (tmp_path / "bad").write_bytes(b"\xff")
        safeio.read_text(tmp_path / "bad")
