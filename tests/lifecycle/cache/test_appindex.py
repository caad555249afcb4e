"""The app layer's stat index: reuse without reading, and every kind of change still seen."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from lifecycle.phases import export as export_mod
from lifecycle.phases.pipeline import BuildInputs, Inputs, run_build
from tests.infra.images import BaseImage

log = logging.getLogger("test.appindex")


@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "Procfile").write_text("web: cat src/data.txt\n")
    (app / "src" / "data.txt").write_text("version-1")
    # Files younger than the previous scan are always re-read; age them past the window.
    time.sleep(1.1)
    return app


@pytest.fixture
def app_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts app layers actually written (the launcher layer is written every time)."""
    writes: list[int] = []
    real = export_mod.tarball.write_layer

    def counting(entries: Any, dest: Path, **kwargs: Any) -> Any:
        entries = list(entries)
        if any(e.name.startswith("var/task/") for e in entries):
            writes.append(len(entries))
        return real(entries, dest, **kwargs)

    monkeypatch.setattr(export_mod.tarball, "write_layer", counting)
    return writes


def build(app: Path, tmp_path: Path, base: BaseImage) -> dict[str, Any]:
    inputs = Inputs(app_dir=app, cache_dir=tmp_path / "cache")
    doc = run_build(inputs, BuildInputs(image=f"oci:{tmp_path}/out:x", run_image=base.ref),
                    log).to_json()
    return next(layer for layer in doc["layers"] if layer["name"] == "app")


def test_no_change_reuses_without_writing(app: Path, tmp_path: Path, busybox_base: BaseImage,
                                          app_writes: list[int]) -> None:
    first = build(app, tmp_path, busybox_base)
    time.sleep(1.1)
    second = build(app, tmp_path, busybox_base)
    assert second == {**first, "reused": True}
    assert len(app_writes) == 1


def test_edit_keeping_size_and_mtime_is_still_seen(app: Path, tmp_path: Path,
                                                   busybox_base: BaseImage,
                                                   app_writes: list[int]) -> None:
    first = build(app, tmp_path, busybox_base)
    time.sleep(1.1)
    data = app / "src" / "data.txt"
    before = data.stat()
    data.write_text("version-2")  # same length
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (data.stat().st_size, data.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    second = build(app, tmp_path, busybox_base)
    assert second["reused"] is False and second["digest"] != first["digest"]


@pytest.mark.parametrize("change", ["add", "remove", "chmod", "rename"])
def test_tree_changes_change_the_layer(app: Path, tmp_path: Path, busybox_base: BaseImage,
                                       change: str) -> None:
    first = build(app, tmp_path, busybox_base)
    time.sleep(1.1)
    data = app / "src" / "data.txt"
    if change == "add":
        (app / "src" / "new.txt").write_text("x")
    elif change == "remove":
        data.unlink()
    elif change == "chmod":
        data.chmod(0o755)
    else:
        data.rename(app / "src" / "renamed.txt")
    second = build(app, tmp_path, busybox_base)
    assert second["reused"] is False and second["digest"] != first["digest"]
