"""Kills and races: the store and the cache survive SIGKILL at any moment and concurrent builds."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import run_json
from tests.infra.cli import LIFECYCLE_COMMAND, CliRunner
from tests.infra.images import BaseImage


def make_app(root: Path) -> Path:
    """A Procfile app with a few MB of files, so export takes long enough to be interrupted."""
    app = root / "app"
    (app / "data").mkdir(parents=True)
    (app / "Procfile").write_text("web: cat /var/task/data/0.bin\n")
    rng = random.Random(7)
    for index in range(40):
        (app / "data" / f"{index}.bin").write_bytes(rng.randbytes(200_000))
    return app


def start_build(cli: CliRunner, app: Path, base: BaseImage, image: str,
                cache: Path | None = None) -> subprocess.Popen[str]:
    extra = ["--cache-dir", str(cache)] if cache else []
    return subprocess.Popen([*LIFECYCLE_COMMAND, "build", str(app), "--image", image,
                             "--run-image", base.ref, "-q", *extra],
                            env=cli.environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sigkill_at_random_moments_never_corrupts_store_or_cache(
        cli: CliRunner, busybox_base: BaseImage, tmp_path: Path) -> None:
    app = make_app(tmp_path)
    # Time one full build to spread the kills across detect, build and export.
    started = time.monotonic()
    proc = start_build(cli, app, busybox_base, "victim:warm")
    assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    duration = time.monotonic() - started
    rng = random.Random(1234)
    killed = 0
    # Kill until ten kills have landed mid-build; a build that finished first does not count.
    for round_ in range(40):
        # Vary the app so every round writes new blobs and a new index entry.
        (app / "round.txt").write_text(str(round_))
        proc = start_build(cli, app, busybox_base, f"victim:r{round_}")
        time.sleep(rng.uniform(0.02, duration * 0.9))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait(timeout=60)
        report = run_json(cli, "verify")
        assert report["ok"] is True, report
        if killed >= 10:
            break
    assert killed >= 10, f"only {killed} kills landed in 40 rounds"
    doc = run_json(cli, "build", app, "--image", "victim:final", "--run-image", busybox_base.ref)
    assert run_json(cli, "inspect", "victim:final")["digest"] == doc["digest"]
    assert run_json(cli, "verify")["ok"] is True


def test_concurrent_builds_to_one_tag_leave_one_complete_image(
        cli: CliRunner, busybox_base: BaseImage, tmp_path: Path) -> None:
    apps = []
    for index in range(2):
        app = make_app(tmp_path / f"p{index}")
        (app / "who.txt").write_text(str(index))
        apps.append(app)
    procs = [start_build(cli, app, busybox_base, "race:latest", cache=tmp_path / f"c{index}")
             for index, app in enumerate(apps)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    report = run_json(cli, "verify")
    assert report["ok"] is True, report
    rows = [row for row in run_json(cli, "images") if row["reference"] == "race:latest"]
    assert len(rows) == 1
    info = run_json(cli, "inspect", "race:latest")
    assert info["digest"] == rows[0]["digest"]
