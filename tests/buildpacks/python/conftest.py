"""Helpers for the Python buildpack's tests: CLI builds and reading the layers they wrote."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

from tests.e2e.conftest import run_json
from tests.infra.cli import CliRunner

CALL_LOG = "calls.log"
# Everything the buildpack may run to install: each stub records its call and fails.
INSTALLER_NAMES = ("pip", "pip3", "python3", "python3.10", "python3.11", "python3.12",
                   "python3.13", "uv", "poetry")


def runner(root: Path) -> CliRunner:
    """A CLI runner with its own store and cache under ``root`` (for module-scoped builds)."""
    return CliRunner(home=root / "hybridless-home", cache=root / "xdg-cache")


def build(cli: CliRunner, app: Path, layout: Path, tag: str, run_image: str, *,
          env: dict[str, str] | None = None, expect: int = 0) -> Any:
    """``build --json`` into ``oci:<layout>:<tag>``; the parsed document."""
    return run_json(cli, "build", app, "--image", f"oci:{layout}:{tag}", "--run-image",
                    run_image, env=env, expect=expect)


def layer(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """One layer of a ``build --json`` document by name."""
    return next(item for item in doc["layers"] if item["name"] == name)


def layer_bytes(layout: Path, digest: str) -> bytes:
    """The uncompressed tar of a blob in an OCI layout."""
    return gzip.decompress((layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes())


def layer_members(layout: Path, digest: str) -> dict[str, tarfile.TarInfo]:
    """The entries of a layer blob by name."""
    with tarfile.open(fileobj=io.BytesIO(layer_bytes(layout, digest))) as tar:
        return {member.name: member for member in tar.getmembers()}


def read_member(layout: Path, digest: str, name: str) -> bytes:
    """One file's bytes from a layer blob."""
    with tarfile.open(fileobj=io.BytesIO(layer_bytes(layout, digest))) as tar:
        extracted = tar.extractfile(name)
        assert extracted is not None, f"{name} is not a regular file"
        return extracted.read()


def failing_installers(directory: Path) -> dict[str, str]:
    """Stubs of every installer command, first on PATH; each logs its argv and exits 97.

    Returns the environment to give the CLI. The CLI itself runs under an absolute
    interpreter path, so only what the buildpack looks up on PATH meets the stubs.
    """
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / CALL_LOG
    for name in INSTALLER_NAMES:
        stub = directory / name
        stub.write_text(f'#!/bin/sh\necho "$0 $*" >> "{log}"\necho "stub {name}: refusing" >&2\n'
                        "exit 97\n")
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return {"PATH": f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"}


def without_tools(*names: str) -> dict[str, str]:
    """A PATH with every directory that holds one of ``names`` left out."""
    kept = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not any((Path(d) / name).exists() for name in names)]
    return {"PATH": os.pathsep.join(kept)}
