"""``build --cache-image``: cache layers come back, files and all, on an empty machine.

A test buildpack counts its cache hits and checks the restored files. Every build gets a
fresh cache directory and store (an ephemeral runner); the cache image lives in the loopback
registry, and skopeo (an independent client) checks what it is.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tarfile
from pathlib import Path
from typing import Any

import pytest

from lifecycle.hookspecs import (
    BUILDPACK_API,
    BuildContext,
    BuildResult,
    DetectContext,
    DetectResult,
    Process,
)
from lifecycle.image import image as model
from lifecycle.image import reference, transports
from lifecycle.image.blobs import digest_of
from lifecycle.phases.pipeline import BuildInputs, Inputs, run_build
from lifecycle.testing import InlinePlugin
from tests.e2e.conftest import pushed_base, tool
from tests.infra.images import BaseImage
from tests.infra.oci_images import AccessLog
from tests.infra.services import Registry
from tests.infra.tars import Entry, file_entry, gzip_layer, special_entry

log = logging.getLogger("test.cache_image")


class CountingBuildpack:
    """A build-only cache layer and a launch+cache layer; each hit is counted and checked."""

    id = "test/cache"
    version = "1.0.0"
    api = BUILDPACK_API

    def __init__(self, counter: Path) -> None:
        self.counter = counter

    def detect(self, ctx: DetectContext) -> DetectResult:
        return DetectResult.passes() if ctx.exists("cache.txt") else DetectResult.fails("no")

    def _count(self, what: str) -> None:
        with self.counter.open("a") as out:
            out.write(f"{what}\n")

    def build(self, ctx: BuildContext) -> BuildResult:
        tools = ctx.layer("tools", metadata={"v": 1}, build=True, cache=True)
        if tools.reused:
            # The files are back, not just the record.
            assert (tools.path / "bin" / "tool").read_text() == "tool v1"
            assert os.readlink(tools.path / "bin" / "link") == "tool"
            assert os.readlink(tools.path / "python") == "/usr/bin/python3"
            assert (tools.path / "hard").stat().st_ino == (tools.path / "bin" / "tool").stat(
            ).st_ino
            assert os.access(tools.path / "bin" / "run", os.X_OK)
            self._count("tools hit")
            if ctx.exists("grow.txt"):
                # A cache a build adds to while reusing it, as package managers do.
                (tools.path / "downloads").write_text((ctx.app_dir / "grow.txt").read_text())
        else:
            (tools.path / "bin").mkdir()
            (tools.path / "bin" / "tool").write_text("tool v1")
            (tools.path / "bin" / "run").write_text("#!/bin/sh\n")
            (tools.path / "bin" / "run").chmod(0o755)
            os.symlink("tool", tools.path / "bin" / "link")
            os.symlink("/usr/bin/python3", tools.path / "python")
            os.link(tools.path / "bin" / "tool", tools.path / "hard")
            self._count("tools miss")
        out = ctx.layer("out", metadata={"v": 1}, launch=True, cache=True)
        if out.reused:
            assert (out.path / "result").read_text() == "built"
            self._count("out hit")
        else:
            (out.path / "result").write_text("built")
            self._count("out miss")
        return BuildResult(processes=(Process("main", ("/bin/sh", "-c", "cat $OUT/result"),
                                              defaults={"OUT": out.image_path}),))


@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "cache.txt").write_text("v1")
    return app


@pytest.fixture
def base(registry: Registry, busybox_base: BaseImage) -> str:
    return pushed_base(registry.host, busybox_base.ref)


def build(app: Path, runner: Path, counter: Path, monkeypatch: pytest.MonkeyPatch, *,
          image: str, run_image: str, cache_image: str | None) -> dict[str, Any]:
    """One build on a machine whose store and cache start as ``runner`` has them."""
    monkeypatch.setenv("HYBRIDLESS_HOME", str(runner / "home"))
    inputs = Inputs(app_dir=app, buildpacks=("test/cache",), cache_dir=runner / "cache",
                    plugins=(InlinePlugin([CountingBuildpack(counter)]),))
    options = BuildInputs(image=image, run_image=run_image, cache_image=cache_image,
                          executor="local")
    return run_build(inputs, options, log).to_json()


def test_cache_layers_come_back_on_an_empty_machine(
    app: Path, base: str, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = f"{registry.host}/cached-{secrets.token_hex(3)}"
    image, cache_image = f"docker://{repo}:1", f"docker://{repo}-cache:build"
    counter = tmp_path / "counter"
    first = build(app, tmp_path / "one", counter, monkeypatch, image=image, run_image=base,
                  cache_image=cache_image)
    assert counter.read_text().split("\n")[:2] == ["tools miss", "out miss"]
    assert first["cache_image"]["restored"] == []
    assert first["cache_image"]["layers"] == ["test/cache/out", "test/cache/tools"]

    # What skopeo sees: a labelled image with no entrypoint and no command.
    config = json.loads(tool("skopeo", "inspect", "--tls-verify=false", "--config",
                             cache_image).stdout)
    label = json.loads(config["config"]["Labels"]["io.hybridless.cache"])
    assert "not a runnable image" in label["note"]
    assert {la["name"] for la in label["layers"]} == {"tools", "out"}
    assert "Entrypoint" not in config["config"] and "Cmd" not in config["config"]
    assert len(config["rootfs"]["diff_ids"]) == 2

    counter.write_text("")
    log_mark = AccessLog(registry)
    second = build(app, tmp_path / "two", counter, monkeypatch, image=image, run_image=base,
                   cache_image=cache_image)
    assert counter.read_text().split("\n")[:2] == ["tools hit", "out hit"]
    assert second["cache_image"]["restored"] == ["test/cache/out", "test/cache/tools"]
    assert second["digest"] == first["digest"]
    # Restored files tar to the same bytes: the cache image is unchanged, nothing is sent.
    assert second["cache_image"]["digest"] == first["cache_image"]["digest"]
    assert not [r for r in log_mark.requests() if r[0] in ("PUT", "POST", "PATCH")]

    # Without the cache image, the same empty machine rebuilds both layers.
    counter.write_text("")
    build(app, tmp_path / "three", counter, monkeypatch, image=f"oci:{tmp_path / 'o'}:1",
          run_image=base, cache_image=None)
    assert counter.read_text().split("\n")[:2] == ["tools miss", "out miss"]


def _hostile_cache(registry: Registry, entries: list[Entry],
                   *, name: str = "tools") -> str:
    """A cache image whose label lists ``test/cache/<name>`` over a hand-made layer."""
    blob, diff_id = gzip_layer(*entries)
    layer = model.Layer(digest_of(blob), diff_id, len(blob), model.OCI_LAYER_GZIP,
                        model.BytesSource.of(blob))
    label = {"version": 1, "note": "x", "stack": None, "layers": [
        {"buildpack": "test/cache", "name": name, "launch": False, "build": True,
         "cache": True, "metadata": {"v": 1}, "executor": "local",
         "diff_id": layer.diff_id}]}
    built = model.with_config(model.append_layers(model.empty(), [layer]),
                              labels={"io.hybridless.cache": json.dumps(label)})
    ref = f"docker://{registry.host}/hostile-{secrets.token_hex(3)}:cache"
    transports.write_image(built, reference.parse(ref))
    return ref


@pytest.mark.parametrize("entries", [
    pytest.param([file_entry("layers/test_cache/tools/../../../escaped")], id="dot-dot"),
    pytest.param([file_entry("/escaped")], id="absolute"),
    pytest.param([file_entry("layers/test_cache/other/escaped")], id="another-layer"),
    pytest.param([special_entry("layers/test_cache/tools/bin", tarfile.SYMTYPE, "/tmp"),
                  file_entry("layers/test_cache/tools/bin/escaped")], id="write-through-symlink"),
    pytest.param([special_entry("layers/test_cache/tools/hard", tarfile.LNKTYPE, "etc/passwd")],
                 id="hardlink-out"),
    pytest.param([special_entry("layers/test_cache/tools/dev", tarfile.CHRTYPE)],
                 id="not-a-file"),
])
def test_a_hostile_cache_layer_is_refused_and_rebuilt(
    entries: list[Entry], app: Path, base: str,
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache_image = _hostile_cache(registry, entries)
    counter = tmp_path / "counter"
    with caplog.at_level(logging.WARNING):
        doc = build(app, tmp_path / "runner", counter, monkeypatch,
                    image=f"oci:{tmp_path / 'out'}:1", run_image=base,
                    cache_image=cache_image)
    assert counter.read_text().split("\n")[0] == "tools miss"
    assert doc["cache_image"]["restored"] == []
    assert any("refused layer test/cache/tools" in r.getMessage() for r in caplog.records)
    assert not list(tmp_path.rglob("escaped"))
    layers_dir = next((tmp_path / "runner" / "cache" / "projects").glob("*/layers/test_cache"))
    assert not [p.name for p in layers_dir.iterdir() if p.name.startswith(".unpacking")]


def test_an_unreadable_label_is_ignored(
    app: Path, base: str, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = f"docker://{registry.host}/notcache-{secrets.token_hex(3)}:1"
    broken = model.with_config(model.empty(), labels={"io.hybridless.cache": "[1, 2"})
    transports.write_image(broken, reference.parse(ref))
    counter = tmp_path / "counter"
    with caplog.at_level(logging.WARNING):
        doc = build(app, tmp_path / "runner", counter, monkeypatch,
                    image=f"oci:{tmp_path / 'out'}:1", run_image=base, cache_image=ref)
    assert counter.read_text().split("\n")[0] == "tools miss"
    assert any("unreadable io.hybridless.cache label" in r.getMessage()
               for r in caplog.records)
    # The build then wrote a sound cache image over it.
    assert doc["cache_image"]["digest"] is not None


def test_an_untouched_restored_layer_is_not_packed_again_and_a_changed_one_is(
    app: Path, base: str, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo = f"{registry.host}/grow-{secrets.token_hex(3)}"
    cache_image = f"docker://{repo}:cache"
    counter = tmp_path / "counter"
    first = build(app, tmp_path / "one", counter, monkeypatch, image=f"oci:{tmp_path / 'a'}:1",
                  run_image=base, cache_image=cache_image)
    with caplog.at_level(logging.DEBUG, logger="test.cache_image"):
        second = build(app, tmp_path / "two", counter, monkeypatch,
                       image=f"oci:{tmp_path / 'b'}:1", run_image=base, cache_image=cache_image)
    assert "cache layer test/cache/tools unchanged: not packed again" in caplog.text
    assert second["cache_image"]["digest"] == first["cache_image"]["digest"]

    # The buildpack adds to the restored cache: it is packed again, and the next runner
    # gets the addition.
    (app / "grow.txt").write_text("one more download")
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="test.cache_image"):
        third = build(app, tmp_path / "three", counter, monkeypatch,
                      image=f"oci:{tmp_path / 'c'}:1", run_image=base, cache_image=cache_image)
    assert "test/cache/tools unchanged" not in caplog.text
    assert third["cache_image"]["digest"] != first["cache_image"]["digest"]
    (app / "grow.txt").unlink()
    counter.write_text("")
    build(app, tmp_path / "four", counter, monkeypatch, image=f"oci:{tmp_path / 'd'}:1",
          run_image=base, cache_image=cache_image)
    assert counter.read_text().split("\n")[0] == "tools hit"
    restored = next((tmp_path / "four" / "cache" / "projects").glob(
        "*/layers/test_cache/tools/downloads"))
    assert restored.read_text() == "one more download"


def test_a_cache_image_in_place_of_the_image_is_a_usage_error(
    app: Path, base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lifecycle.errors import UsageError

    out = f"oci:{tmp_path / 'out'}:1"
    for image, cache_image, tags in ((out, out, ()), (out, f"oci:{tmp_path / 't'}:2",
                                                      (f"oci:{tmp_path / 't'}:2",))):
        monkeypatch.setenv("HYBRIDLESS_HOME", str(tmp_path / "home"))
        inputs = Inputs(app_dir=app, buildpacks=("test/cache",), cache_dir=tmp_path / "cache",
                        plugins=(InlinePlugin([CountingBuildpack(tmp_path / "counter")]),))
        options = BuildInputs(image=image, run_image=base, cache_image=cache_image,
                              tags=tags, executor="local")
        with pytest.raises(UsageError, match="would replace it"):
            run_build(inputs, options, log)
    assert not (tmp_path / "out").exists() and not (tmp_path / "counter").exists()
