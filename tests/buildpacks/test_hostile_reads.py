"""Built-in buildpacks read only regular files inside the app: no FIFO hangs, no host file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from buildpacks.nodejs import versions as node_versions
from buildpacks.nodejs.project import NodeProject
from buildpacks.nodejs.project import infer_function as node_infer
from buildpacks.procfile import parse_procfile
from buildpacks.python import versions as python_versions
from buildpacks.python.project import infer_function as python_infer
from buildpacks.python.project import requirement_files
from lifecycle.errors import BuildError, BuildpackFailed


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (tmp_path / "host-secret").write_text('{"name": "host", "dependencies": {"x": "1"}}\n')
    return root


def test_a_package_json_linked_out_of_the_app_is_not_read(app: Path) -> None:
    (app / "package.json").symlink_to(app.parent / "host-secret")
    project = NodeProject.read(app)
    assert project.package == {} and not project.has_manifest


def test_a_fifo_nvmrc_or_lockfile_does_not_hang(app: Path) -> None:
    os.mkfifo(app / ".nvmrc")
    os.mkfifo(app / "package-lock.json")
    assert node_versions.requested_version((), {}, app).source == "default"
    assert NodeProject.read(app).lockfile is None


def test_inference_skips_handler_files_that_are_fifos_or_links_out(app: Path) -> None:
    os.mkfifo(app / "index.js")
    (app / "handler.js").symlink_to(app.parent / "host-secret")
    assert node_infer(app) is None
    os.mkfifo(app / "handler.py")
    (app / "app.py").symlink_to(app.parent / "host-secret")
    assert python_infer(app) is None


@pytest.mark.parametrize("line", ["-r ../host-secret", "-r /etc/hostname",
                                  "-c ../../../../../../etc/hostname"])
def test_requirements_cannot_include_files_outside_the_app(app: Path, line: str) -> None:
    (app / "requirements.txt").write_text(f"flask\n{line}\n")
    with pytest.raises(BuildpackFailed, match="outside the app or not a regular file"):
        requirement_files(app, "requirements.txt")


def test_a_fifo_python_version_pin_is_ignored(app: Path) -> None:
    os.mkfifo(app / ".python-version")
    assert python_versions.select((), app, None).source == "default"


def test_a_procfile_that_is_a_fifo_a_link_out_or_not_utf8_is_a_one_line_error(app: Path) -> None:
    os.mkfifo(app / "Procfile")
    with pytest.raises(BuildError, match="failed to read Procfile: it is a FIFO"):
        parse_procfile(app / "Procfile")
    (app / "Procfile").unlink()
    (app / "Procfile").symlink_to(app.parent / "host-secret")
    with pytest.raises(BuildError, match="outside the app directory"):
        parse_procfile(app / "Procfile")
    (app / "Procfile").unlink()
    (app / "Procfile").write_bytes(b"web: \xff\n")
    with pytest.raises(BuildError, match="not UTF-8"):
        parse_procfile(app / "Procfile")
