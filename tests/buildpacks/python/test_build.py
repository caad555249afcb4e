"""Daemonless builds of the Python examples: layers, processes, credentials, reuse, digests.

These build on the tiny busybox base (nothing runs in the image here; ``test_e2e`` runs the
images). pip runs on the host for real, against the package index. The Mangum example is built
once per module in a copy that also carries credential files, and later tests reuse its cache.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.buildpacks.python.conftest import (
    CALL_LOG,
    build,
    failing_installers,
    layer,
    layer_bytes,
    layer_members,
    read_member,
    runner,
    without_tools,
)
from tests.e2e.conftest import copy_example
from tests.infra.cli import CliRunner
from tests.infra.images import BaseImage

DEPS = "hybridless/python/deps"
SHIM = "hybridless/python/shim"
DEPS_PREFIX = "layers/hybridless_python/deps"
CREDENTIALS = {
    ".env": "DATABASE_PASSWORD=hunter2\n",
    ".netrc": "machine example.invalid login deploy password s3cr3t-token\n",
    "pip.conf": "[global]\ntimeout = 60\n",
}


@dataclass(frozen=True)
class Built:
    """One build of an app: the runner (and so the cache) that made it, and its output."""

    cli: CliRunner
    app: Path
    layout: Path
    doc: dict[str, Any]


def mangum_copy(dest: Path) -> Path:
    """The Mangum example plus credential files and host bytecode that must stay out."""
    app = copy_example("python-mangum", dest)
    for name, text in CREDENTIALS.items():
        (app / name).write_text(text)
    (app / "__pycache__").mkdir()
    (app / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"host bytecode")
    return app


@pytest.fixture(scope="module")
def mangum(tmp_path_factory: pytest.TempPathFactory, busybox_base: BaseImage) -> Built:
    """The Mangum example built once, from a fresh cache."""
    root = tmp_path_factory.mktemp("py-mangum")
    cli = runner(root)
    app = mangum_copy(root / "src")
    doc = build(cli, app, root / "out", "first", busybox_base.ref)
    return Built(cli, app, root / "out", doc)


def test_dependencies_and_shim_get_their_own_layers(mangum: Built) -> None:
    names = [item["name"] for item in mangum.doc["layers"]]
    assert names == ["base", DEPS, SHIM, "app", "launcher"]
    deps = layer_members(mangum.layout, layer(mangum.doc, DEPS)["digest"])
    site = f"{DEPS_PREFIX}/site-packages"
    for module in ("starlette/__init__.py", "mangum/__init__.py", "anyio/__init__.py"):
        assert f"{site}/{module}" in deps
    assert f"{DEPS_PREFIX}/bin" in deps  # on PATH, even when no package has scripts
    shim = layer_members(mangum.layout, layer(mangum.doc, SHIM)["digest"])
    assert "layers/hybridless_python/shim/hybridless_shim/__main__.py" in shim
    assert not [name for name in shim if ".mypy_cache" in name]


def test_bytecode_is_hash_based_and_names_image_paths_only(mangum: Built,
                                                           tmp_path: Path) -> None:
    digest = layer(mangum.doc, DEPS)["digest"]
    pyc = f"{DEPS_PREFIX}/site-packages/starlette/__pycache__/routing.cpython-311.pyc"
    assert pyc in layer_members(mangum.layout, digest)
    header = read_member(mangum.layout, digest, pyc)[:16]
    # PEP 552 flags: bit 0 = hash-based, bit 1 = check the source. Unchecked: no stat, no mtime.
    assert int.from_bytes(header[4:8], "little") == 0b01
    data = layer_bytes(mangum.layout, digest)
    assert b"/layers/hybridless_python/deps/site-packages/starlette/routing.py" in data
    for host_path in (str(mangum.app.parent), sys.prefix, str(Path(sys.executable).parent)):
        assert host_path.encode() not in data, f"the deps layer mentions {host_path}"


def test_each_function_is_a_shim_process_with_python_paths(mangum: Built) -> None:
    assert [(p["name"], p["event"], p["default"]) for p in mangum.doc["processes"]] == [
        ("api", "httpd", True), ("api-v2", "httpd", False), ("api-alb", "httpd", False)]
    script = read_member(mangum.layout, layer(mangum.doc, "launcher")["digest"],
                         "hybridless/launcher").decode()
    assert "python3 -m hybridless_shim" in script or "'python3' '-m' 'hybridless_shim'" in script
    assert ("/layers/hybridless_python/shim:/layers/hybridless_python/deps/site-packages"
            in script)
    assert "PYTHONUNBUFFERED" in script


def test_credentials_and_host_bytecode_stay_out_of_the_app_layer(mangum: Built) -> None:
    app = layer_members(mangum.layout, layer(mangum.doc, "app")["digest"])
    assert "var/task/app.py" in app
    assert "var/task/requirements.txt" in app
    leaked = [name for name in app
              if name.rsplit("/", 1)[-1] in (*CREDENTIALS, "__pycache__", "app.cpython-311.pyc")]
    assert leaked == []


def test_unchanged_dependencies_are_reused_without_running_pip(
        mangum: Built, busybox_base: BaseImage, tmp_path: Path) -> None:
    layers_dir = next(mangum.cli.cache.glob("hybridless/projects/*/layers/hybridless_python"))
    assert (layers_dir / "deps.json").is_file()
    shutil.rmtree(layers_dir / "deps", ignore_errors=True)  # its files; its record stays
    env = failing_installers(tmp_path / "stubs")
    calls = tmp_path / "stubs" / CALL_LOG

    again = build(mangum.cli, mangum.app, mangum.layout, "again", busybox_base.ref, env=env)
    assert not calls.exists(), f"the buildpack ran an installer: {calls.read_text()}"
    assert again["digest"] == mangum.doc["digest"]
    assert layer(again, DEPS) == {**layer(mangum.doc, DEPS), "reused": True}
    assert layer(again, SHIM)["reused"] is True

    # The same stubs do stop a build that must install: the check above can fail.
    with (mangum.app / "requirements.txt").open("a") as requirements:
        requirements.write("# a changed input\n")
    try:
        failed = build(mangum.cli, mangum.app, mangum.layout, "changed", busybox_base.ref,
                       env=env, expect=50)
    finally:
        (mangum.app / "requirements.txt").write_text(
            (mangum.app / "requirements.txt").read_text().replace("# a changed input\n", ""))
    assert "Python 3.11 is needed" in failed["error"]
    assert calls.read_text().strip()


def test_two_host_directories_give_the_same_digest(
        mangum: Built, busybox_base: BaseImage, tmp_path: Path) -> None:
    # A different path, directory name and cache: only the app's contents are shared.
    other = mangum_copy(tmp_path / "elsewhere" / "deeper")
    renamed = other.with_name("renamed-app")
    other.rename(renamed)
    doc = build(runner(tmp_path / "cache-b"), renamed, tmp_path / "out", "b", busybox_base.ref)
    assert layer(doc, DEPS)["reused"] is False
    assert [item["digest"] for item in doc["layers"]] == \
        [item["digest"] for item in mangum.doc["layers"]]
    assert doc["digest"] == mangum.doc["digest"]


def test_an_app_without_dependencies_has_no_dependency_layer(
        cli: CliRunner, busybox_base: BaseImage, tmp_path: Path) -> None:
    app = copy_example("python-hello", tmp_path / "src")
    doc = build(cli, app, tmp_path / "out", "hello", busybox_base.ref)
    assert [item["name"] for item in doc["layers"]] == ["base", SHIM, "app", "launcher"]
    assert doc["processes"] == [{"name": "main", "event": "httpd", "default": True}]


@pytest.mark.parametrize(("lockfile", "tool", "install"), [
    ("uv.lock", "uv", "pip install uv"),
    ("poetry.lock", "poetry", "poetry-plugin-export"),
])
def test_a_lockfile_without_its_tool_says_what_to_install(
        cli: CliRunner, busybox_base: BaseImage, tmp_path: Path,
        lockfile: str, tool: str, install: str) -> None:
    app = copy_example("python-task", tmp_path / "src")
    (app / lockfile).write_text("# a lockfile\n")
    failed = build(cli, app, tmp_path / "out", "x", busybox_base.ref,
                   env=without_tools(tool), expect=50)
    assert f"{tool} is not installed" in failed["error"]
    assert install in failed["hint"]
