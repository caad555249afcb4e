"""The example third-party buildpack's own test suite passes against this checkout.

It runs in a subprocess, with the plugin loaded by ``-p`` and the package on PYTHONPATH, so it
needs no install; test_install.py runs it again from a pip install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.infra.cli import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "buildpacks" / "static-site"


def test_example_suite_passes(tmp_path: Path) -> None:
    copy = tmp_path / "static-site"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(copy / "src"), str(REPO_ROOT)])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "lifecycle.testing", "-p",
         "no:cacheprovider"],
        cwd=copy, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
