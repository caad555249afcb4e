"""Manifests and platforms: hostile documents are refused before any path is built from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifecycle.errors import RegistryError, UsageError
from lifecycle.registry.client import blob_path
from lifecycle.registry.manifests import OCI_MANIFEST, Manifest, Platform
from lifecycle.registry.progress import Silent, TerminalProgress, for_terminal

GOOD = "sha256:" + "ab" * 32


def _manifest(digest: object, size: object = 1) -> Manifest:
    return Manifest.of(json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "x", "digest": GOOD, "size": 1},
        "layers": [{"mediaType": "x", "digest": digest, "size": size}],
    }).encode())


@pytest.mark.parametrize(("digest", "size"), [
    ("sha256:../../../../etc/passwd" + "0" * 36, 1),
    ("sha256:" + "AB" * 32, 1),
    (GOOD, -1),
    (GOOD, True),
    (GOOD, "12"),
    (None, 1),
])
def test_hostile_descriptors_are_refused(digest: object, size: object) -> None:
    with pytest.raises(RegistryError, match="no valid digest and size"):
        _manifest(digest, size).layers()


def test_documents_that_are_not_objects() -> None:
    with pytest.raises(RegistryError, match="not JSON"):
        Manifest.of(b"{nope")
    with pytest.raises(RegistryError, match="not a JSON object"):
        Manifest.of(b"[1]").layers()
    assert Manifest.of(b'{"manifests": []}').is_index  # mediaType is optional in OCI


def test_blob_path_refuses_what_is_not_a_digest(tmp_path: Path) -> None:
    assert blob_path(tmp_path, GOOD) == tmp_path / "sha256" / ("ab" * 32)
    with pytest.raises(RegistryError):
        blob_path(tmp_path, "sha256:../x")


def test_platforms() -> None:
    assert str(Platform.parse("linux/arm64/v8")) == "linux/arm64/v8"
    assert Platform.parse("linux/arm64/v8").matches({"os": "linux", "architecture": "arm64"})
    assert not Platform.parse("linux/arm/v7").matches(
        {"os": "linux", "architecture": "arm", "variant": "v6"})
    for bad in ("linux", "linux/", "a/b/c/d", ""):
        with pytest.raises(UsageError, match="OS/ARCH"):
            Platform.parse(bad)


def test_progress_on_a_terminal_and_quiet_elsewhere() -> None:
    import io

    stream = io.StringIO()
    assert isinstance(for_terminal(quiet=False, stream=stream), Silent)  # not a TTY
    progress = TerminalProgress(stream)
    progress.start(GOOD, 2_000_000, "pushing")
    progress.advance(GOOD, 1_000_000)
    progress.finish(GOOD, "pushed")
    progress.close()
    text = stream.getvalue()
    assert "abababababab: pushing 0 B / 2.0 MB" in text
    assert "abababababab: pushed (2.0 MB)" in text
