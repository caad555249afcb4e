"""A first build right after the app was written (a script, CI) does not leave every later
no-change rebuild hashing the app: the receipt is refreshed once the files are old."""

from __future__ import annotations

import json
import time
from pathlib import Path

from lifecycle.cache.receipt import RACY_NS
from tests.e2e.conftest import run_json
from tests.infra.cli import CliRunner
from tests.infra.images import BaseImage


def receipt_fresh(cli: CliRunner) -> dict[str, str]:
    (path,) = (cli.cache / "hybridless" / "receipts").glob("*.json")
    fresh: dict[str, str] = json.loads(path.read_bytes())["fresh"]
    return fresh


def test_receipt_of_a_build_started_right_after_writing_is_refreshed(
        cli: CliRunner, busybox_base: BaseImage, hello_app: Path) -> None:
    for path in hello_app.rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes())  # every file written this instant
    written = time.time()
    args = ("build", hello_app, "--image", "hello:1", "--run-image", busybox_base.ref)
    first = run_json(cli, *args)
    assert receipt_fresh(cli)  # the race is real: these files are checked by content
    # The one wait this needs: the files' ctimes cannot be set back, only outlived.
    time.sleep(max(0.0, written + RACY_NS / 1e9 + 0.2 - time.time()))
    second = cli(*args, "--json", "-v")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["unchanged"] is True
    assert "no longer racy" in second.stderr
    assert receipt_fresh(cli) == {}
    third = cli(*args, "--json", "-v")
    assert json.loads(third.stdout)["digest"] == first["digest"]
    assert "no longer racy" not in third.stderr
