"""Helpers for the Node.js buildpack tests: apps written on the fly, local npm packages, and an
OCI layout reader that is independent of the lifecycle's own image code."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra.cli import CliRunner


def _host_node_major() -> str:
    found = re.match(r"v(\d+)\.", subprocess.run(["node", "--version"], capture_output=True,
                                                 text=True, check=True).stdout)
    assert found, "node --version printed no version"
    return found[1]


# What the engine passes for a stack whose run image provides Node.js. Tests about
# dependencies and the app's build use the build host's Node, as such a stack's builds do,
# instead of downloading Node.js into a layer for every build (test_runtime.py does that).
HOST_NODE_PROVIDES = json.dumps({"nodejs": _host_node_major()})


class ImageNodeCli(CliRunner):
    """A CLI runner whose builds are told that the run image provides Node.js."""

    def __call__(self, *args: str | os.PathLike[str], **kwargs: Any
                 ) -> subprocess.CompletedProcess[str]:
        """Run the CLI; ``build`` gets ``--env HYBRIDLESS_STACK_PROVIDES=…`` first."""
        if args and args[0] == "build":
            args = ("build", "--env", f"HYBRIDLESS_STACK_PROVIDES={HOST_NODE_PROVIDES}",
                    *args[1:])
        return super().__call__(*args, **kwargs)


@pytest.fixture
def cli(tmp_path: Path) -> CliRunner:
    """The shared ``cli`` fixture, with builds on a base that provides Node.js."""
    return ImageNodeCli(home=tmp_path / "hybridless-home", cache=tmp_path / "xdg-cache")


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write ``files`` (relative path → content) under ``root``; return ``root``."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def npm_package(dest: Path, name: str, files: Mapping[str, str], *, version: str = "1.0.0",
                extra: Mapping[str, Any] | None = None) -> Path:
    """An npm tarball (``package/…`` entries) with a generated package.json; returns its path."""
    manifest = {"name": name, "version": version, "main": "index.js", **(extra or {})}
    entries = {"package.json": json.dumps(manifest, indent=2), **files}
    dest.mkdir(parents=True, exist_ok=True)
    tgz = dest / f"{name}-{version}.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for rel, text in sorted(entries.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"package/{rel}")
            info.size = len(data)
            info.mode = 0o755 if rel.startswith("bin/") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return tgz


def lock(app: Path) -> None:
    """Write package-lock.json with the host's npm (offline when dependencies are ``file:``)."""
    subprocess.run(["npm", "install", "--package-lock-only", "--no-audit", "--no-fund"],
                   cwd=app, check=True, capture_output=True, timeout=120)


@dataclass(frozen=True)
class ImageContents:
    """An image read back from an OCI layout: its config and the merged file tree."""

    config: Mapping[str, Any]
    members: Mapping[str, tarfile.TarInfo]
    data: Mapping[str, bytes]
    raw_layers: tuple[bytes, ...]

    def text(self, path: str) -> str:
        """A regular file's content as text."""
        return self.data[path.lstrip("/")].decode()

    def label(self, name: str) -> Any:
        """A JSON label of the image config."""
        return json.loads(self.config["config"]["Labels"][name])


def read_layout(layout: Path, tag: str) -> ImageContents:
    """Read ``layout:tag`` with tarfile and gzip only (later layers win, as in a rootfs)."""
    blobs = layout / "blobs" / "sha256"

    def blob(digest: str) -> bytes:
        return (blobs / digest.split(":", 1)[1]).read_bytes()

    index = json.loads((layout / "index.json").read_text())
    entry = next(m for m in index["manifests"]
                 if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    manifest = json.loads(blob(entry["digest"]))
    config = json.loads(blob(manifest["config"]["digest"]))
    members: dict[str, tarfile.TarInfo] = {}
    data: dict[str, bytes] = {}
    raw: list[bytes] = []
    for layer in manifest["layers"]:
        plain = gzip.decompress(blob(layer["digest"]))
        raw.append(plain)
        with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
            for info in tar.getmembers():
                name = info.name.lstrip("./").rstrip("/")
                members[name] = info
                if info.isfile():
                    extracted = tar.extractfile(info)
                    data[name] = extracted.read() if extracted else b""
    return ImageContents(config, members, data, tuple(raw))


def build_layout(cli: CliRunner, app: Path, base_ref: str, out: Path, *args: str,
                 env: Mapping[str, str] | None = None) -> tuple[dict[str, Any], ImageContents]:
    """Build ``app`` into ``oci:out:img`` and read it back; asserts exit 0."""
    from tests.e2e.conftest import run_json

    doc = run_json(cli, "build", app, "--image", f"oci:{out}:img", "--run-image", base_ref,
                   *args, env=env)
    return doc, read_layout(out, "img")
