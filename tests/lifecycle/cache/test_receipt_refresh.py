"""Receipts drop their racy content checks once the files are old, as git refreshes a racily
clean index; an edit after that is still seen."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from lifecycle.cache import receipt
from lifecycle.image.blobs import BlobDir

log = logging.getLogger("test.receipt-refresh")


class Result(dict[str, Any]):
    """A stand-in for a build's result: the receipt stores its JSON and parses it back."""

    def to_json(self) -> dict[str, Any]:
        return dict(self)


def lookup(observed: receipt.Observation) -> Result | None:
    return receipt.lookup(observed, log, Result)


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Move the receipt module's clock forward, as if the files were written long ago."""
    real = time.time_ns
    monkeypatch.setattr(receipt.time, "time_ns", lambda: real() + int(seconds * 1e9))


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> tuple[Path, Result, receipt.Observation]:
    """An app written just now, built once: its receipt checks every file by content."""
    # pytest rewrites this variable between setup and call; it is no input of a build.
    monkeypatch.setattr(receipt, "_SHELL_ONLY", receipt._SHELL_ONLY | {"PYTEST_CURRENT_TEST"})
    app = tmp_path / "app"
    (app / "lib").mkdir(parents=True)
    for index in range(20):
        (app / "lib" / f"m{index}.js").write_text(f"module {index}\n" * 50)
    store = BlobDir(tmp_path / "store" / "blobs", tmp_path / "store.stamps")
    digest = store.put_bytes(b"{}")
    (tmp_path / "store" / "index.json").write_text(json.dumps({"manifests": [
        {"digest": digest, "annotations": {"org.opencontainers.image.ref.name": "x:1"}}]}))
    outputs = receipt.Outputs(str(tmp_path / "store"), ("x:1",), digest, (digest,),
                              str(tmp_path / "store.stamps"))
    request = {"app": str(app)}
    observed = receipt.observe(request, str(app), str(tmp_path / "cache"), None)
    assert len(observed.fresh) == 20  # written this tick: racy, so checked by content
    document = Result({"image": "x:1", "digest": digest})
    base = receipt.local_source("store", "", str(tmp_path / "store"), "x:1", digest)
    assert receipt.record(observed, document, hermetic=True, tools=(), run_image=base,
                          outputs=outputs, log=log)
    return app, document, observed


def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = receipt._content

    def counting(path: str) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(receipt, "_content", counting)
    return calls


def fresh_in(observed: receipt.Observation) -> dict[str, str]:
    data: dict[str, str] = json.loads(observed.receipt_path.read_bytes())["fresh"]
    return data


def test_young_files_keep_their_content_check(
        recorded: tuple[Path, Result, receipt.Observation]) -> None:
    app, document, observed = recorded
    before = observed.receipt_path.stat()
    again = receipt.observe({"app": str(app)}, str(app), str(observed.receipt_path.parents[1]),
                            None)
    assert lookup(again) == document
    assert len(fresh_in(observed)) == 20
    assert observed.receipt_path.stat().st_ino == before.st_ino  # not rewritten


def test_old_files_are_dropped_once_and_never_hashed_again(
        recorded: tuple[Path, Result, receipt.Observation],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, document, observed = recorded
    cache = str(observed.receipt_path.parents[1])
    later(monkeypatch, 3)
    old = receipt.observe({"app": str(app)}, str(app), cache, None)
    assert old.fresh == {}
    assert lookup(old) == document  # checked by content one last time ...
    assert fresh_in(observed) == {}  # ... and refreshed
    calls = hashes(monkeypatch)
    for _ in range(3):
        assert lookup(receipt.observe({"app": str(app)}, str(app), cache, None)) == document
    assert calls == []


def test_an_edit_after_the_refresh_is_still_seen(
        recorded: tuple[Path, Result, receipt.Observation],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, document, observed = recorded
    cache = str(observed.receipt_path.parents[1])
    later(monkeypatch, 3)
    assert lookup(receipt.observe({"app": str(app)}, str(app), cache, None)) == document
    assert fresh_in(observed) == {}
    # Same size, mtime put back: only the ctime moves, and the stat part sees it.
    target = app / "lib" / "m3.js"
    before = target.stat()
    target.write_text(target.read_text().replace("module", "MODULE", 1))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert lookup(receipt.observe({"app": str(app)}, str(app), cache, None)) is None


def test_a_file_edited_before_the_refresh_is_not_refreshed_away(
        recorded: tuple[Path, Result, receipt.Observation],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, _, observed = recorded
    cache = str(observed.receipt_path.parents[1])
    target = app / "lib" / "m5.js"
    target.write_text(target.read_text().replace("module", "MODULE", 1))
    later(monkeypatch, 3)
    assert lookup(receipt.observe({"app": str(app)}, str(app), cache, None)) is None
    assert len(fresh_in(observed)) == 20  # a receipt that did not answer is left as it was
