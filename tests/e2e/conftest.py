"""Helpers shared by the end-to-end tests: example apps copied to temp dirs, JSON runs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.cli import REPO_ROOT, CliRunner

EXAMPLES = REPO_ROOT / "examples"


def copy_example(name: str, dest: Path) -> Path:
    """A private copy of ``examples/<name>`` (tests must not write into the repo)."""
    target = dest / name
    shutil.copytree(EXAMPLES / name, target, symlinks=True)
    return target


def run_json(cli: CliRunner, *args: Any, expect: int = 0, **kwargs: Any) -> Any:
    """Run the CLI with ``--json``; assert the exit code; return the parsed document."""
    result = cli(*args, "--json", **kwargs)
    assert result.returncode == expect, (
        f"exit {result.returncode} != {expect}\nstdout:\n{result.stdout}\n"
        f"stderr:\n{result.stderr}")
    return json.loads(result.stdout)


def tool(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run an independent checker (skopeo, umoci, tar) and return its output."""
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=300)
    if check:
        assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result


def pushed_base(registry_host: str, base_ref: str) -> str:
    """``base_ref`` copied by skopeo (an independent client) to a fresh registry repository."""
    import secrets

    ref = f"docker://{registry_host}/base-{secrets.token_hex(3)}/busybox:1"
    tool("skopeo", "copy", "--dest-tls-verify=false", base_ref, ref)
    return ref


@pytest.fixture
def hello_app(tmp_path: Path) -> Path:
    """A copy of the Procfile example app."""
    return copy_example("procfile-hello", tmp_path / "src")
