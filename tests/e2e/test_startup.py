"""Start-up stays light: --help and a no-change build import none of the heavy libraries."""

from __future__ import annotations

import re
from pathlib import Path

from tests.infra.cli import CliRunner
from tests.infra.images import BaseImage

HEAVY = ("docker", "boto3", "botocore", "jsonschema")


def imported(stderr: str) -> set[str]:
    """Top-level module names from ``python -X importtime`` output."""
    names = set()
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", line)
        if match:
            names.add(match.group(1).split(".")[0])
    return names


def test_help_imports_nothing_heavy(cli: CliRunner) -> None:
    cli.command = (*cli.command[:1], "-X", "importtime", *cli.command[1:])
    result = cli("--help")
    assert result.returncode == 0 and "detect" in result.stdout
    assert imported(result.stderr).isdisjoint(HEAVY)


def test_no_change_build_skips_schema_validation_and_heavy_imports(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path, tmp_path: Path) -> None:
    args = ("build", hello_app, "--image", "hello", "--run-image", busybox_base.ref)
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    cli.command = (*cli.command[:1], "-X", "importtime", *cli.command[1:])
    # --full: the phases themselves must stay light (the receipt would skip them).
    second = cli(*args, "--full")
    assert second.returncode == 0, second.stderr
    assert imported(second.stderr).isdisjoint(HEAVY), imported(second.stderr) & set(HEAVY)
    assert "reusing app layer" in second.stderr or "exporting app layer" in second.stderr
