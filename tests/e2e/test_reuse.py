"""Layer reuse: a layer whose metadata still matches is re-referenced by digest, not rebuilt."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from lifecycle.hookspecs import (
    BUILDPACK_API,
    BuildContext,
    BuildResult,
    DetectContext,
    DetectResult,
    Prepend,
    Process,
)
from lifecycle.phases.pipeline import BuildInputs, Inputs, run_build
from lifecycle.testing import InlinePlugin
from tests.infra.images import BaseImage

log = logging.getLogger("test.reuse")


class DepsBuildpack:
    """Installs "dependencies" (a file from deps.lock) into a launch layer, counting installs."""

    id = "test/deps"
    version = "1.0.0"
    api = BUILDPACK_API

    def __init__(self, counter: Path) -> None:
        self.counter = counter

    def detect(self, ctx: DetectContext) -> DetectResult:
        return DetectResult.passes() if ctx.exists("deps.lock") else DetectResult.fails("no lock")

    def build(self, ctx: BuildContext) -> BuildResult:
        lock = (ctx.app_dir / "deps.lock").read_text()
        deps = ctx.layer("deps", metadata={"lock": lock}, launch=True)
        if not deps.reused:
            ctx.run(["/bin/sh", "-c", f'echo x >> "{self.counter}"'])
            (deps.path / "bin").mkdir()
            (deps.path / "bin" / "tool").write_text(lock)
        tools = ctx.layer("tools", metadata={"v": 1}, build=True, cache=True)
        if not tools.reused:
            (tools.path / "marker").write_text("cached")
        return BuildResult(
            processes=(Process("main", ("/bin/sh", "-c", "cat $DEPS/bin/tool"),
                               defaults={"DEPS": deps.image_path}),),
            launch_env={"PATH": Prepend(f"{deps.image_path}/bin")},
        )


@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "deps.lock").write_text("left-pad==1\n")
    (app / "main.txt").write_text("v1")
    return app


def build_once(app: Path, tmp_path: Path, base: BaseImage, counter: Path, tag: str
               ) -> dict[str, Any]:
    inputs = Inputs(app_dir=app, buildpacks=("test/deps",), cache_dir=tmp_path / "cache",
                    plugins=(InlinePlugin([DepsBuildpack(counter)]),))
    options = BuildInputs(image=f"oci:{tmp_path}/out:{tag}", run_image=base.ref)
    return run_build(inputs, options, log).to_json()


def layer(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(layer for layer in doc["layers"] if layer["name"] == name)


def test_unchanged_metadata_reuses_by_digest_even_without_files(
        app: Path, tmp_path: Path, busybox_base: BaseImage) -> None:
    counter = tmp_path / "installs"
    first = build_once(app, tmp_path, busybox_base, counter, "one")
    assert counter.read_text().count("x") == 1
    assert layer(first, "test/deps/deps")["reused"] is False
    # A launch-only layer keeps no files in the cache: its blob is all reuse needs.
    deps_dir = tmp_path / "cache" / "projects"
    assert not list(deps_dir.glob("*/layers/test_deps/deps/bin"))

    (app / "main.txt").write_text("v2")
    second = build_once(app, tmp_path, busybox_base, counter, "two")
    assert counter.read_text().count("x") == 1  # no reinstall
    assert layer(second, "test/deps/deps") == {**layer(first, "test/deps/deps"), "reused": True}
    assert layer(second, "app")["digest"] != layer(first, "app")["digest"]
    # The build+cache layer kept its files.
    assert list(deps_dir.glob("*/layers/test_deps/tools/marker"))

    (app / "deps.lock").write_text("left-pad==2\n")
    third = build_once(app, tmp_path, busybox_base, counter, "three")
    assert counter.read_text().count("x") == 2
    assert layer(third, "test/deps/deps")["digest"] != layer(first, "test/deps/deps")["digest"]


def test_missing_blob_forces_a_rebuild(app: Path, tmp_path: Path,
                                       busybox_base: BaseImage) -> None:
    counter = tmp_path / "installs"
    first = build_once(app, tmp_path, busybox_base, counter, "one")
    digest = layer(first, "test/deps/deps")["digest"]
    (tmp_path / "cache" / "blobs" / "sha256" / digest.split(":")[1]).unlink()
    second = build_once(app, tmp_path, busybox_base, counter, "two")
    assert counter.read_text().count("x") == 2
    assert layer(second, "test/deps/deps")["digest"] == digest  # reproducible all the same
