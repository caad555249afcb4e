"""A hostile app tree or a stray path cannot make a build read outside the app, or hang."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.e2e.conftest import run_json
from tests.infra.cli import CliRunner
from tests.infra.images import BaseImage

SECRET = "builder-host-secret-7f3a"


def _label(cli: CliRunner, ref: str) -> dict[str, object]:
    doc = run_json(cli, "inspect", ref)
    return doc["build"]


def test_a_git_head_pointing_outside_the_app_does_not_reach_the_label(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    git = hello_app / ".git"
    git.mkdir()
    (git / "HEAD").write_text("ref: " + "../" * 12 + str(secret).lstrip("/") + "\n")
    run_json(cli, "build", hello_app, "--image", "hostile:git", "--run-image", busybox_base.ref)
    label = _label(cli, "hostile:git")
    assert label["source"] == {}
    assert SECRET not in json.dumps(run_json(cli, "inspect", "hostile:git"))


def test_fifos_where_git_metadata_and_the_descriptor_should_be_fail_fast(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path, tmp_path: Path) -> None:
    (hello_app / ".git").mkdir()
    os.mkfifo(hello_app / ".git" / "HEAD")
    # A FIFO in .git is simply no revision (timeout: a blocking open would hang forever).
    run_json(cli, "build", hello_app, "--image", "hostile:fifo", "--run-image",
             busybox_base.ref, timeout=120)
    (hello_app / "project.toml").unlink()
    os.mkfifo(hello_app / "project.toml")
    result = cli("build", hello_app, "--image", "hostile:fifo", "--run-image",
                 busybox_base.ref, timeout=60)
    assert result.returncode == 10, result.stderr
    assert "project.toml: it is a FIFO, not a regular file" in result.stderr
    assert "Traceback" not in result.stderr
    result = cli("detect", hello_app, "--descriptor", "/dev/zero", timeout=60)
    assert result.returncode == 10, result.stderr
    assert "/dev/zero: it is a character device" in result.stderr


def test_a_procfile_linked_out_of_the_app_is_refused(cli: CliRunner, hello_app: Path,
                                                    tmp_path: Path) -> None:
    outside = tmp_path / "Procfile"
    outside.write_text(f"web: echo {SECRET}\n")
    (hello_app / "Procfile").unlink()
    (hello_app / "Procfile").symlink_to(outside)
    result = cli("detect", hello_app, timeout=60)
    assert result.returncode == 21, result.stderr
    assert "Procfile: it leads outside the app directory" in result.stderr
    assert SECRET not in result.stderr + result.stdout
