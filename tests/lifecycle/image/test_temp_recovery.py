"""Writers SIGKILLed in the middle of an archive or ``oci:`` export leave temps that ``gc``
removes, wherever they are; a live writer's temp is never touched."""

from __future__ import annotations

import io
import multiprocessing
import os
import shutil
import signal
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from lifecycle.image.blobs import note_temp_dir, recover_noted, temp_journal
from lifecycle.image.image import OCI_LAYER_GZIP, Image, Layer, append_layers, empty
from lifecycle.image.reference import parse
from lifecycle.image.transports import write_image
from lifecycle.image.transports.store import open_store

FORK = multiprocessing.get_context("fork")
SIZE = 8 << 20


class _Stalling(io.RawIOBase):
    """Gives one chunk of bytes, then hangs: the writer is caught mid-blob."""

    def __init__(self) -> None:
        self.sent = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.sent:
            time.sleep(600)
        self.sent = True
        view = memoryview(buffer)
        view[: len(view)] = b"\0" * len(view)
        return len(view)


class StallingSource:
    """A blob source whose single layer never finishes reading."""

    def open(self, digest: str) -> BinaryIO:
        return io.BufferedReader(_Stalling(), buffer_size=1 << 20)

    def local_path(self, digest: str) -> Path | None:
        return None


def stalling_image() -> Image:
    layer = Layer("sha256:" + "ab" * 32, "sha256:" + "cd" * 32, SIZE, OCI_LAYER_GZIP,
                  StallingSource())
    return append_layers(empty(), [layer])


def _write(home: str, ref: str) -> None:
    os.environ["HYBRIDLESS_HOME"] = home
    write_image(stalling_image(), parse(ref))


def temps_in(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return [p for p in directory.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("form", ["oci-archive", "docker-archive", "oci-other-filesystem"])
def test_gc_removes_what_a_sigkilled_export_left(tmp_path: Path, form: str) -> None:
    home = tmp_path / "home"
    if form == "oci-other-filesystem":
        shm = Path("/dev/shm")
        if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
            pytest.skip("no second filesystem at /dev/shm")
        dest = shm / f"hybridless-test-{os.getpid()}-{tmp_path.name}" / "layout"
        ref, watched = f"oci:{dest}:x", dest / "blobs" / "sha256"
    else:
        dest = tmp_path / "out" / "image.tar"
        ref, watched = f"{form}:{dest}:x:1" if form == "docker-archive" else f"{form}:{dest}:x", \
            dest.parent
    try:
        victim = FORK.Process(target=_write, args=(str(home), ref))
        victim.start()
        deadline = time.monotonic() + 30
        while not temps_in(watched) and time.monotonic() < deadline:
            time.sleep(0.01)
        left = temps_in(watched)
        assert left and all(f"-{victim.pid}-" in p.name for p in left)
        # While the writer lives, gc leaves its file alone.
        open_store(home).gc()
        assert all(p.exists() for p in left)
        os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
        victim.join()
        report = open_store(home).gc()
        assert set(report.recovered) >= {str(p) for p in left}
        assert temps_in(watched) == []
        assert form == "oci-other-filesystem" or not dest.exists()
        # The list of outside directories forgets the ones it cleaned.
        assert str(watched) not in temp_journal(home).read_text()
    finally:
        if form == "oci-other-filesystem":
            shutil.rmtree(dest.parent, ignore_errors=True)


def test_the_journal_survives_hostile_content_and_vanished_directories(tmp_path: Path) -> None:
    journal = tmp_path / "temp-dirs"
    gone = tmp_path / "gone"
    journal.write_bytes(b"\n\xff\xfe not a path\n" + str(gone).encode() + b"\n")
    note_temp_dir(tmp_path / "there", journal)
    note_temp_dir(tmp_path / "there", journal)  # listed once
    assert journal.read_text(errors="replace").count("there") == 1
    assert recover_noted(journal) == []
    assert journal.read_bytes() == b""
