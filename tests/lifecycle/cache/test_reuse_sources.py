"""The pieces behind ``--previous-image`` and ``--cache-image``, on hostile input.

``unpack`` gets hand-made tars; ``previous.restore`` gets hand-made build labels on a local
image. Both must refuse what this lifecycle never writes and leave nothing behind.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
from pathlib import Path

import pytest

from lifecycle.cache import previous
from lifecycle.cache.layers import ProjectCache
from lifecycle.cache.remote import ReadImage
from lifecycle.cache.unpack import UnpackRefused, unpack
from lifecycle.image import image as model
from lifecycle.image import reference, tarball, tree
from lifecycle.image.blobs import BlobDir, digest_of
from tests.infra.tars import Entry, file_entry, gzip_layer, special_entry

PREFIX = "layers/test_bp/tools"
log = logging.getLogger("test.reuse_sources")


def test_round_trip_gives_the_same_layer(tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "tool").write_text("tool")
    (source / "bin" / "run").write_text("#!/bin/sh\n")
    (source / "bin" / "run").chmod(0o755)
    (source / "bin" / "link").symlink_to("tool")
    (source / "python").symlink_to("/usr/bin/python3")
    (source / "hard").hardlink_to(source / "bin" / "tool")
    (source / "empty").mkdir()
    blobs = BlobDir(tmp_path / "blobs")
    first = tarball.write_layer(tree.scan(source, prefix=PREFIX, confine=False), blobs)
    dest = tmp_path / "layers" / "tools"
    dest.parent.mkdir()
    with blobs.open(first.digest) as stream:
        unpack(stream, PREFIX, dest, first.diff_id)
    again = tarball.write_layer(tree.scan(dest, prefix=PREFIX, confine=False),
                                BlobDir(tmp_path / "blobs2"))
    assert again.digest == first.digest


@pytest.mark.parametrize(("entries", "why"), [
    ([file_entry(f"{PREFIX}/../../etc/passwd")], "climbs out"),
    ([file_entry("/etc/passwd")], "absolute"),
    ([file_entry("layers/test_bp/other/x")], "outside"),
    ([file_entry(f"{PREFIX}/a"), file_entry(f"{PREFIX}/a")], "appears twice"),
    ([special_entry(f"{PREFIX}/dir", tarfile.SYMTYPE, "/tmp"), file_entry(f"{PREFIX}/dir/x")],
     "appears twice"),
    ([file_entry(f"{PREFIX}/x"), special_entry(f"{PREFIX}/x/y", tarfile.SYMTYPE, "z")],
     "not a directory"),
    ([special_entry(f"{PREFIX}/h", tarfile.LNKTYPE, "etc/shadow")], "outside"),
    ([special_entry(f"{PREFIX}/s", tarfile.SYMTYPE, "/etc/shadow"),
      special_entry(f"{PREFIX}/h", tarfile.LNKTYPE, f"{PREFIX}/s")], "not a file of the layer"),
    ([special_entry(f"{PREFIX}/etc", tarfile.SYMTYPE, "/etc"),
      special_entry(f"{PREFIX}/h", tarfile.LNKTYPE, f"{PREFIX}/etc/hostname")],
     "not a file of the layer"),
    ([special_entry(f"{PREFIX}/gone", tarfile.LNKTYPE, f"{PREFIX}/missing")],
     "not a file of the layer"),
    ([special_entry(f"{PREFIX}/fifo", tarfile.FIFOTYPE)], "not a file, directory or link"),
    ([special_entry(f"{PREFIX}/dev", tarfile.CHRTYPE)], "not a file, directory or link"),
])
def test_hostile_entries_are_refused_and_leave_nothing(
    entries: list[Entry], why: str, tmp_path: Path,
) -> None:
    blob, diff_id = gzip_layer(*entries)
    dest = tmp_path / "layers" / "tools"
    dest.parent.mkdir()
    with pytest.raises(UnpackRefused, match=why):
        unpack(io.BytesIO(blob), PREFIX, dest, diff_id)
    assert list(dest.parent.iterdir()) == []
    assert not (tmp_path / "etc").exists()


def test_a_diff_id_mismatch_or_a_broken_stream_is_refused(tmp_path: Path) -> None:
    blob, diff_id = gzip_layer(file_entry(f"{PREFIX}/a"))
    dest = tmp_path / "tools"
    with pytest.raises(UnpackRefused, match="DiffID"):
        unpack(io.BytesIO(blob), PREFIX, dest, "sha256:" + "0" * 64)
    with pytest.raises(UnpackRefused, match="not a readable layer"):
        unpack(io.BytesIO(blob[: len(blob) // 2]), PREFIX, dest, diff_id)
    with pytest.raises(UnpackRefused, match="not a readable layer"):
        unpack(io.BytesIO(b"not gzip at all"), PREFIX, dest, diff_id)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_unpack_leaves_nothing_the_next_one_keeps(tmp_path: Path) -> None:
    blob, diff_id = gzip_layer(file_entry(f"{PREFIX}/a", b"new"))
    dest = tmp_path / "tools"
    # What a build killed mid-unpack leaves: a half-written directory named by its pid.
    stale = tmp_path / ".unpacking-tools-99999999"
    stale.mkdir()
    (stale / "half").write_text("half")
    unpack(io.BytesIO(blob), PREFIX, dest, diff_id)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tools"]
    assert (dest / "a").read_text() == "new"


def test_setuid_bits_are_dropped(tmp_path: Path) -> None:
    blob, diff_id = gzip_layer(file_entry(f"{PREFIX}/suid", mode=0o4755))
    dest = tmp_path / "tools"
    unpack(io.BytesIO(blob), PREFIX, dest, diff_id)
    assert (dest / "suid").stat().st_mode & 0o7777 == 0o755


# -- previous.restore on hostile labels ----------------------------------------------------


def _previous(tmp_path: Path, label: object, blob: bytes = b"layer") -> ReadImage:
    layer = model.Layer(digest_of(blob), digest_of(b"diff:" + blob), len(blob),
                        source=model.BytesSource.of(blob))
    built = model.with_config(model.append_layers(model.empty(), [layer]),
                              labels={"io.hybridless.build": json.dumps(label)})
    return ReadImage(reference.parse(f"oci:{tmp_path}/prev:1"), built)


def _label(layers: list[dict[str, object]], stack: str | None = None) -> dict[str, object]:
    return {"api": "0.2", "lifecycle": "0", "project": None, "buildpacks": [],
            "layers": layers, "processes": [], "stack": stack, "compressor": "gzip",
            "run-image": {"reference": "x", "digest": "sha256:" + "1" * 64, "layers": 0}}


@pytest.fixture
def cache(tmp_path: Path) -> ProjectCache:
    return ProjectCache(tmp_path / "cache", "id-test")


def test_a_sound_label_restores_a_launch_only_record(tmp_path: Path,
                                                     cache: ProjectCache) -> None:
    found = _previous(tmp_path, _label([]))
    diff_id = found.image.layers[0].diff_id
    found = _previous(tmp_path, _label([
        {"name": "test/bp/deps", "diff_id": diff_id, "metadata": {"lock": "1"}}]))
    restored = previous.restore(found, cache, ["test/bp"], None, log)
    assert restored.layers == ("test/bp/deps",)
    record = cache.read_record("test/bp", "deps")
    assert record is not None
    assert (record.launch, record.build, record.cache) == (True, False, False)
    assert record.metadata == {"lock": "1"} and record.origin is None
    # A local previous image's blob is copied into the cache, checked.
    assert record.blob is not None and cache.blobs.has(record.blob.digest)
    handle = cache.layer("test/bp", "deps", metadata={"lock": "1"}, launch=True, build=False,
                         cache=False)
    assert handle.reused and handle.path.is_dir() and not any(handle.path.iterdir())


@pytest.mark.parametrize("layers", [
    [{"name": "test/bp/../x", "diff_id": "DIFF", "metadata": {}}],
    [{"name": "test/bp/.hidden", "diff_id": "DIFF", "metadata": {}}],
    [{"name": "test/bp/deps", "diff_id": "sha256:" + "9" * 64, "metadata": {}}],
    [{"name": "other/bp/deps", "diff_id": "DIFF", "metadata": {}}],
    [{"name": "test/bp/deps", "diff_id": "DIFF", "metadata": [1, 2]}],
    [{"name": "test/bp/deps"}],
    "not a list",
])
def test_hostile_labels_restore_nothing(layers: object, tmp_path: Path,
                                        cache: ProjectCache) -> None:
    diff_id = _previous(tmp_path, _label([])).image.layers[0].diff_id
    if isinstance(layers, list):
        layers = [{k: (diff_id if v == "DIFF" else v) for k, v in la.items()} for la in layers]
    found = _previous(tmp_path, _label(layers))  # type: ignore[arg-type]
    restored = previous.restore(found, cache, ["test/bp"], None, log)
    assert restored.layers == ()
    assert not list((cache.project_dir / "layers").rglob("*.json"))


def test_another_stack_or_a_label_that_is_not_json_restores_nothing(
    tmp_path: Path, cache: ProjectCache
) -> None:
    diff_id = _previous(tmp_path, _label([])).image.layers[0].diff_id
    layers = [{"name": "test/bp/deps", "diff_id": diff_id, "metadata": {}}]
    found = _previous(tmp_path, _label(layers, stack="debian-bookworm-nodejs"))
    assert previous.restore(found, cache, ["test/bp"], "debian-trixie-nodejs", log).layers == ()
    layer = found.image.layers[0]
    broken = model.with_config(model.append_layers(model.empty(), [layer]),
                               labels={"io.hybridless.build": "{not json"})
    found = ReadImage(found.ref, broken)
    assert previous.restore(found, cache, ["test/bp"], None, log).layers == ()


def test_a_previous_image_of_another_executor_restores_nothing(
    tmp_path: Path, cache: ProjectCache
) -> None:
    diff_id = _previous(tmp_path, _label([])).image.layers[0].diff_id
    label = {**_label([{"name": "test/bp/deps", "diff_id": diff_id, "metadata": {}}]),
             "executor": "docker sha256:" + "2" * 64}
    assert previous.restore(_previous(tmp_path, label), cache, ["test/bp"], None,
                            log).layers == ()
    label["executor"] = cache.executor
    assert previous.restore(_previous(tmp_path, label), cache, ["test/bp"], None,
                            log).layers == ("test/bp/deps",)
