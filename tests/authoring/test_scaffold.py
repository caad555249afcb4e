"""``buildpacks new``: the skeleton it writes is a working, lint-clean package whose tests pass."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomli

from lifecycle import scaffold
from lifecycle.errors import UsageError
from lifecycle.hookspecs import ENTRY_POINT_GROUP
from tests.infra.cli import REPO_ROOT, CliRunner


def test_names_derive_from_the_id() -> None:
    names = scaffold.Names.of("acme/greeter")
    assert (names.distribution, names.module, names.entry_point, names.process,
            names.marker) == ("hybridless-acme-greeter", "hybridless_acme_greeter",
                              "acme-greeter", "greeter", "greeter.txt")
    assert scaffold.Names.of("hybridless-go").distribution == "hybridless-go"
    assert scaffold.Names.of("go.mod-tools").module == "hybridless_go_mod_tools"


@pytest.mark.parametrize("bad", ["Acme/Greeter", "a/b/c", "-x", "a b", "", "a/"])
def test_invalid_ids_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError, match="not a valid buildpack id"):
        scaffold.Names.of(bad)


def test_cli_writes_a_package(cli: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "greeter"
    result = cli("buildpacks", "new", "acme/greeter", "--dir", target, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document == {
        "id": "acme/greeter", "distribution": "hybridless-acme-greeter",
        "module": "hybridless_acme_greeter", "entry_point": "acme-greeter",
        "group": ENTRY_POINT_GROUP, "directory": str(target.resolve()),
        "files": [".gitignore", "README.md", "pyproject.toml",
                  "src/hybridless_acme_greeter/__init__.py", "tests/test_buildpack.py"],
    }
    pyproject = tomli.loads((target / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"][ENTRY_POINT_GROUP] == {
        "acme-greeter": "hybridless_acme_greeter"}
    text = cli("buildpacks", "new", "acme/other", "--dir", tmp_path / "other")
    assert text.returncode == 0 and "pip install -e" in text.stdout


def test_cli_refuses_a_non_empty_directory(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("")
    result = cli("buildpacks", "new", "acme/x", "--dir", tmp_path / "taken")
    assert result.returncode == 2
    assert "exists and is not an empty directory" in result.stderr
    assert cli("buildpacks", "new", "Bad Name").returncode == 2


def test_skeleton_tests_pass_with_the_plugin(tmp_path: Path) -> None:
    created = scaffold.write("acme/greeter", tmp_path / "pkg")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(created.directory / "src"),
                                                        str(REPO_ROOT)])}
    # Not installed here, so the entry-point test cannot pass; the venv test runs it too.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "lifecycle.testing", "-p",
         "no:cacheprovider", "-k", "not entry_point"],
        cwd=created.directory, env=env, capture_output=True, text=True, timeout=120,
        check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_skeleton_is_lint_clean(tmp_path: Path) -> None:
    created = scaffold.write("acme/greeter", tmp_path / "pkg")
    rules = '["E", "F", "W", "I", "B", "UP", "RUF"]'
    result = subprocess.run(
        ["ruff", "check", "--no-cache", "--isolated", "--config", 'src = ["src"]',
         "--config", f"lint.select = {rules}", "--config", "line-length = 100",
         "--config", 'target-version = "py310"', "."],
        cwd=created.directory, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
