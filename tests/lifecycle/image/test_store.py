"""The local store: images/rm/gc/verify, concurrent writers against gc, and SIGKILLed writers."""

from __future__ import annotations

import gzip
import hashlib
import io
import multiprocessing
import os
import random
import re
import signal
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from lifecycle.errors import BaseImageFetchError, BaseImageNotFound, InvalidReference
from lifecycle.image.blobs import BlobDir
from lifecycle.image.image import OCI_LAYER_GZIP, BytesSource, Image, Layer, append_layers, empty
from lifecycle.image.reference import parse
from lifecycle.image.transports import read_image, write_image
from lifecycle.image.transports.store import Store, default_home, open_store

FORK = multiprocessing.get_context("fork")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_image(seed: int, size: int = 4096, layers: int = 1, level: int = 1) -> Image:
    """An image of ``layers`` real gzip layers holding ``size`` random bytes each."""
    rng = random.Random(seed)
    made = []
    for index in range(layers):
        data = rng.randbytes(size)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(f"file-{seed}-{index}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        raw = buffer.getvalue()
        packed = gzip.compress(raw, compresslevel=level, mtime=0)
        made.append(
            Layer(sha(packed), sha(raw), len(packed), OCI_LAYER_GZIP, BytesSource.of(packed))
        )
    return append_layers(empty(), made)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("HYBRIDLESS_HOME", str(tmp_path / "home"))
    return open_store()


def test_default_home_follows_the_contract(tmp_path: Path) -> None:
    assert default_home({"HYBRIDLESS_HOME": "/h", "XDG_DATA_HOME": "/x"}) == Path("/h")
    assert default_home({"XDG_DATA_HOME": "/x"}) == Path("/x/hybridless")
    assert default_home({}) == Path.home() / ".local" / "share" / "hybridless"


def test_write_read_list_remove(store: Store) -> None:
    first, second = make_image(1), make_image(2, layers=2)
    assert write_image(first, parse("app"), tags=[parse("app:v1")]) == first.digest
    write_image(second, parse("team/other:2"))
    assert read_image(parse("app:v1")).digest == first.digest
    assert store.root == store.home / "store" and (store.root / "index.json").is_file()
    rows = store.images()
    assert [(r.reference, r.digest) for r in rows] == [
        ("app:latest", first.digest),
        ("app:v1", first.digest),
        ("team/other:2", second.digest),
    ]
    assert rows[2].size == second.size and rows[2].created == "1980-01-01T00:00:01Z"
    assert rows[0].to_json()["reference"] == "app:latest"
    assert store.remove("app:latest") == first.digest
    assert [r.reference for r in store.images()] == ["app:v1", "team/other:2"]
    with pytest.raises(BaseImageNotFound, match="failed to remove app:latest: no such image"):
        store.remove(parse("app"))
    with pytest.raises(BaseImageNotFound, match=r"the local store .* has no such image"):
        read_image(parse("app:latest"))
    with pytest.raises(InvalidReference, match="oci: transport"):
        store.remove(parse("oci:x:y"))


def test_gc_frees_only_unreachable_blobs(store: Store) -> None:
    kept, dropped = make_image(1), make_image(2, size=50_000)
    shared = append_layers(kept, dropped.layers)  # shares kept's and dropped's layers
    write_image(kept, parse("kept"))
    write_image(dropped, parse("dropped"))
    assert store.gc().removed == ()
    store.remove("dropped")
    report = store.gc()
    assert set(report.removed) == {dropped.digest, dropped.config_digest, dropped.layers[0].digest}
    assert report.freed == dropped.size
    assert store.verify().ok
    write_image(shared, parse("shared"))
    store.remove("kept")
    report = store.gc()
    # Its manifest and config go; its layer is still used by "shared".
    assert set(report.removed) == {kept.digest, kept.config_digest}
    assert read_image(parse("shared")).digest == shared.digest and store.verify().ok


def test_verify_reports_corruption_missing_blobs_and_dead_temps(store: Store) -> None:
    image = make_image(7, layers=2)
    write_image(image, parse("app:1"))
    report = store.verify()
    assert report.ok and report.images == 1 and report.blobs == 4 and report.problems == ()
    assert report.to_json()["ok"] is True

    blobs = store.layout.blobs
    layer = blobs.path(image.layers[0].digest)
    layer.chmod(0o644)
    layer.write_bytes(b"bitrot" + layer.read_bytes()[6:])
    report = store.verify()
    assert not report.ok and report.corrupt == (image.layers[0].digest,)
    assert any("app:1: blob" in line and "corrupt" in line for line in report.problems)
    layer.unlink()
    report = store.verify()
    assert report.corrupt == () and report.problems == (
        f"app:1: blob {image.layers[0].digest} is missing",
    )
    write_image(image, parse("app:1"))  # re-writing restores the missing blob
    assert store.verify().ok

    dead = FORK.Process(target=os.getpid)
    dead.start()
    dead.join()
    leftovers = [
        blobs.directory / f".tmp-{dead.pid}-0badc0de",
        store.root / f".tmp-{dead.pid}-00c0ffee",
    ]
    for path in leftovers:
        path.write_bytes(b"half")
    report = store.verify()
    assert report.ok and sorted(report.recovered) == sorted(str(p) for p in leftovers)
    assert not any(p.exists() for p in leftovers)

    alive = blobs.directory / f".tmp-{os.getppid()}-12345678"
    alive.write_bytes(b"someone is writing")
    report = store.verify()
    assert not report.ok and report.temps == (str(alive),)
    alive.unlink()


def test_gc_refuses_when_a_referenced_manifest_is_unreadable(store: Store) -> None:
    image = make_image(3)
    write_image(image, parse("app"))
    store.layout.blobs.path(image.digest).unlink()
    with pytest.raises(BaseImageFetchError, match=r"app:latest: manifest .* cannot be read"):
        store.gc()
    assert store.layout.blobs.has(image.config_digest)  # nothing was collected
    assert any("cannot be read" in line for line in store.verify().problems)


def _writer(home: str, seed: int, count: int, digests: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    os.environ["HYBRIDLESS_HOME"] = home
    for index in range(count):
        image = make_image(seed * 1000 + index, size=200_000, layers=2)
        digests.put(write_image(image, parse("race:latest")))


def _collector(home: str, stop: Any, removed: Any) -> None:
    target = Store(home)
    count = 0
    while not stop.is_set():
        count += len(target.gc().removed)
    removed.put(count)


def test_concurrent_writers_and_gc_leave_one_complete_image(store: Store) -> None:
    digests: multiprocessing.Queue = FORK.Queue()  # type: ignore[type-arg]
    stop = FORK.Event()
    removed: multiprocessing.Queue = FORK.Queue()  # type: ignore[type-arg]
    writers = [
        FORK.Process(target=_writer, args=(str(store.home), seed, 8, digests)) for seed in (1, 2)
    ]
    collector = FORK.Process(target=_collector, args=(str(store.home), stop, removed))
    collector.start()
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    stop.set()
    collector.join(60)
    assert collector.exitcode == 0
    written = {digests.get(timeout=5) for _ in range(16)}
    assert len(written) == 16
    rows = store.images()
    assert len(rows) == 1 and rows[0].reference == "race:latest" and rows[0].digest in written
    report = store.verify()
    assert report.ok, report.problems
    final = read_image(parse("race"))
    assert all(store.layout.blobs.verify(layer.digest) for layer in final.layers)
    # Every superseded image (15, of 4 blobs each) is collected, during the race or now.
    assert removed.get(timeout=5) + len(store.gc().removed) == 15 * 4


def _endless_writer(home: str) -> None:
    os.environ["HYBRIDLESS_HOME"] = home
    seed = os.getpid() * 1000
    while True:
        seed += 1
        # Stored (level 0) gzip keeps image making cheap, so most time goes to writing blobs.
        write_image(make_image(seed, size=4_000_000, layers=2, level=0), parse("victim:latest"))


def _wait_for_temp(directory: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if directory.is_dir() and any(p.name.startswith(".tmp-") for p in directory.iterdir()):
            return
        time.sleep(0.001)


def test_sigkilled_writers_never_break_the_store(store: Store) -> None:
    rng = random.Random(20240601)
    recovered = 0
    kills = 12
    for round_ in range(kills):
        victim = FORK.Process(target=_endless_writer, args=(str(store.home),))
        victim.start()
        if round_ % 2:
            # Half the kills aim at a blob being written, the moment that matters most.
            _wait_for_temp(store.layout.blobs.directory, timeout=10)
            time.sleep(rng.uniform(0, 0.01))
        else:
            time.sleep(rng.uniform(0.05, 0.4))
        os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
        victim.join()  # reaped: its pid no longer counts as alive
        assert victim.exitcode == -signal.SIGKILL
        report = store.verify()
        assert report.ok, f"after kill {round_}: {report.problems}"
        recovered += len(report.recovered)
        rewrite = make_image(10_000 + round_, layers=2)
        assert write_image(rewrite, parse("victim:latest")) == rewrite.digest
        assert read_image(parse("victim")).digest == rewrite.digest
        assert store.verify().ok
        store.gc()  # keeps later verifies short: they hash every blob
    assert recovered > 0, "no kill landed mid-write: the test proved nothing"
    assert store.verify().ok and [r.reference for r in store.images()] == ["victim:latest"]
    assert BlobDir(store.layout.blobs.root).temps() == []


@pytest.mark.parametrize(("value", "reason"), [
    ([], "JSON list, not an object"),
    ({"manifests": {}}, "'manifests' that is not a list"),
    ({"manifests": ["x"]}, "manifests[0] that is not an object"),
    ({"manifests": [{"digest": "sha256:../../x"}]}, "not sha256:<64 hex digits>"),
    ({"manifests": [{"digest": "sha256:" + "a" * 64, "annotations": []}]}, "annotations"),
])
def test_a_hostile_index_is_refused_with_its_reason(value: object, reason: str) -> None:
    from lifecycle.image.transports.oci_layout import checked_index

    with pytest.raises(ValueError, match=re.escape(reason)):
        checked_index(value)
    assert checked_index({"manifests": []}) == {"manifests": []}
