"""Build receipts: a no-change rebuild is answered without running, and every change is seen."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lifecycle.cache import receipt
from lifecycle.phases.report import BuildReport
from tests.authoring.test_buildpacks_cli import install
from tests.e2e.conftest import run_json
from tests.infra.cli import REPO_ROOT, CliRunner
from tests.infra.images import BaseImage

log = logging.getLogger("test.receipt")


def build(cli: CliRunner, app: Path, base: BaseImage, *extra: str, image: str = "hello:1",
          env: dict[str, str] | None = None) -> Any:
    """``build --json`` of ``app`` onto ``base``."""
    return run_json(cli, "build", app, "--image", image, "--run-image", base.ref, *extra,
                    env=env)


def test_no_change_rebuild_answers_from_the_receipt_without_loading_plugins(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path) -> None:
    first = build(cli, hello_app, busybox_base)
    assert first["unchanged"] is False
    timed = CliRunner(cli.home, cli.cache, (sys.executable, "-X", "importtime", "-m", "lifecycle"))
    result = timed("build", hello_app, "--image", "hello:1", "--run-image", busybox_base.ref,
                   "--json")
    assert result.returncode == 0, result.stderr
    second = json.loads(result.stdout)
    assert second["unchanged"] is True
    assert second["digest"] == first["digest"]
    assert second["layers"] == first["layers"]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "lifecycle.cli" in imported  # the probe works
    assert not imported & {"pluggy", "lifecycle.phases.pipeline", "buildpacks.procfile"}
    # The image is really there: the store still lists it under the digest.
    listed = run_json(cli, "images")
    assert {"hello:1": first["digest"]}.items() <= {r["reference"]: r["digest"]
                                                   for r in listed}.items()


def test_edit_that_keeps_size_and_mtime_is_rebuilt(cli: CliRunner, busybox_base: BaseImage,
                                                   hello_app: Path) -> None:
    first = build(cli, hello_app, busybox_base)
    assert build(cli, hello_app, busybox_base)["unchanged"] is True
    target = hello_app / "Procfile"
    before = target.stat()
    text = target.read_text()
    target.write_text(text.replace("e", "E", 1))
    assert len(target.read_text()) == len(text)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    changed = build(cli, hello_app, busybox_base)
    assert changed["unchanged"] is False
    assert changed["digest"] != first["digest"]


@pytest.mark.parametrize("change", ["env", "full", "rm", "new-file", "run-image"])
def test_every_kind_of_change_runs_the_phases(cli: CliRunner, busybox_base: BaseImage,
                                              hello_app: Path, tmp_path: Path,
                                              change: str) -> None:
    base = BaseImage(tmp_path / "base", busybox_base.tag)
    shutil.copytree(busybox_base.layout_dir, base.layout_dir)
    first = build(cli, hello_app, base)
    assert build(cli, hello_app, base)["unchanged"] is True
    extra: list[str] = []
    env = None
    if change == "env":
        env = {"SOME_SETTING": "1"}
    elif change == "full":
        extra = ["--full"]
    elif change == "rm":
        run_json(cli, "rm", "hello:1")
    elif change == "new-file":
        (hello_app / "notes.txt").write_text("new\n")
    elif change == "run-image":
        index = base.layout_dir / "index.json"
        index.write_text(json.dumps(json.loads(index.read_text()), indent=1))
    again = build(cli, hello_app, base, *extra, env=env)
    assert again["unchanged"] is False
    if change in ("env", "full", "rm", "run-image"):
        assert again["digest"] == first["digest"]  # same inputs for the image, same image
    listed = {r["reference"]: r["digest"] for r in run_json(cli, "images")}
    assert listed["hello:1"] == again["digest"]


def test_destination_outside_the_store_gets_no_receipt(cli: CliRunner, busybox_base: BaseImage,
                                                       hello_app: Path, tmp_path: Path) -> None:
    image = f"oci:{tmp_path / 'out'}:v1"
    assert build(cli, hello_app, busybox_base, image=image)["unchanged"] is False
    assert build(cli, hello_app, busybox_base, image=image)["unchanged"] is False


CLOCK = """\
import time

from lifecycle.hookspecs import BUILDPACK_API, BuildResult, DetectResult, Process, hookimpl


class Clock:
    id = "acme/clock"
    version = "1.0.0"
    api = BUILDPACK_API
    HERMETIC

    def detect(self, ctx):
        return DetectResult.passes()

    def build(self, ctx):
        layer = ctx.layer("stamp", metadata={"second": int(time.time())}, launch=True)
        if not layer.reused:
            (layer.path / "stamp").write_text("stamped")
        return BuildResult(processes=(Process("web", ("/bin/sh", "-c", "cat stamp")),))


@hookimpl
def hybridless_buildpacks():
    return [Clock()]
"""


@pytest.mark.parametrize("hermetic", [False, True])
def test_buildpack_promise_and_code_decide(cli: CliRunner, busybox_base: BaseImage,
                                          hello_app: Path, tmp_path: Path,
                                          hermetic: bool) -> None:
    site = tmp_path / "site"
    install(site, "acme-clock", "1.0.0", "clock_bp",
            CLOCK.replace("HERMETIC", "hermetic = True" if hermetic else "# not hermetic"))
    env = {"PYTHONPATH": f"{site}{os.pathsep}{REPO_ROOT}"}
    args = ("--buildpack", "acme/clock")
    assert build(cli, hello_app, busybox_base, *args, env=env)["unchanged"] is False
    assert build(cli, hello_app, busybox_base, *args, env=env)["unchanged"] is hermetic
    if hermetic:
        # An edited buildpack is a change, even with nothing installed or removed.
        module = site / "clock_bp.py"
        module.write_text(module.read_text() + "\n# edited\n")
        assert build(cli, hello_app, busybox_base, *args, env=env)["unchanged"] is False


@dataclass(frozen=True)
class Stored:
    """A stand-in for a build's result: the receipt stores its JSON and parses it back."""

    image: str
    digest: str

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "digest": self.digest}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Stored:
        return cls(data["image"], data["digest"])


def _one_image_store(tmp_path: Path) -> tuple[Path, Any, receipt.Outputs]:
    """A store naming one blob ``x:1``, used as both the run image and the destination."""
    store = tmp_path / "store"
    (store / "blobs" / "sha256").mkdir(parents=True)
    digest = "sha256:" + hashlib.sha256(b"{}").hexdigest()
    (store / "index.json").write_text(json.dumps({"manifests": [
        {"digest": digest, "annotations": {"org.opencontainers.image.ref.name": "x:1"}}]}))
    (store / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_text("{}")
    outputs = receipt.Outputs(str(store), ("x:1",), digest, (digest,),
                              str(tmp_path / "store.stamps"))
    return store, receipt.local_source("store", "", str(store), "x:1", digest), outputs


def test_a_result_that_no_longer_parses_means_a_full_build(tmp_path: Path) -> None:
    """A receipt whose stored result the producer cannot read back answers nothing."""
    app = tmp_path / "app"
    app.mkdir()
    observed = receipt.observe({"app": str(app)}, str(app), str(tmp_path / "cache"), None)
    _, base, outputs = _one_image_store(tmp_path)
    assert receipt.record(observed, Stored("x:1", outputs.digest), hermetic=True, tools=(),
                          run_image=base, outputs=outputs, log=log)
    assert receipt.lookup(observed, log, Stored.from_json) is not None
    assert receipt.lookup(observed, log, BuildReport.from_json) is None  # keys it lacks


def test_same_tick_edit_is_caught_by_content(tmp_path: Path) -> None:
    """A write that keeps every stat field (same clock tick) is caught by the content check."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "handler.js").write_text("one\n")
    request = {"app": str(app)}
    observed = receipt.observe(request, str(app), str(tmp_path / "cache"), None)
    assert observed.fresh == {"handler.js": receipt._content(str(app / "handler.js"))}
    store, base, outputs = _one_image_store(tmp_path)
    result = Stored("x:1", outputs.digest)
    assert receipt.record(observed, result, hermetic=True, tools=(), run_image=base,
                          outputs=outputs, log=log)
    assert receipt.lookup(observed, log, Stored.from_json) == result
    # Same stat as far as the receipt can tell (the parts are equal), other content.
    (app / "handler.js").write_text("two\n")
    assert receipt.lookup(observed, log, Stored.from_json) is None
    # And the store losing a blob is seen too.
    (app / "handler.js").write_text("one\n")
    assert receipt.lookup(observed, log, Stored.from_json) is not None
    blob = store / "blobs" / "sha256" / outputs.digest.removeprefix("sha256:")
    blob.write_text("{ }")  # a blob whose stamp moved is hashed again: this one is corrupt
    assert receipt.lookup(observed, log, Stored.from_json) is None
    assert not blob.exists()  # removed, so that the full build writes it again
    blob.write_text("{}")
    assert receipt.lookup(observed, log, Stored.from_json) is not None
    blob.unlink()
    assert receipt.lookup(observed, log, Stored.from_json) is None
