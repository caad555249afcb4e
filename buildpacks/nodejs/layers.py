"""Content hashes that key layer reuse, and the shim layer.

The shim ships inside this package, so a layer holding a copy of it is keyed by the hash of
its files: every build with the same lifecycle release re-references the same blob.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from lifecycle.hookspecs import BuildContext, Layer

SHIM_DIR = Path(__file__).with_name("shim")
SHIM_SUFFIXES = (".mjs", ".js", ".cjs", ".json")
# Never part of an app's identity: installed dependencies and version control.
UNHASHED = frozenset({"node_modules", ".git"})


def shim_files() -> list[Path]:
    """The files of the shim that run in the image, sorted."""
    return sorted(p for p in SHIM_DIR.rglob("*") if p.is_file() and p.suffix in SHIM_SUFFIXES)


def shim_layer(ctx: BuildContext) -> Layer:
    """The ``shim`` launch layer; rebuilt only when a shim file changes."""
    files = shim_files()
    digest = hashlib.sha256()
    for path in files:
        rel = path.relative_to(SHIM_DIR).as_posix()
        digest.update(f"{rel}\0{file_sha256(path)}\n".encode())
    layer = ctx.layer("shim", metadata={"sha256": digest.hexdigest(), "files": len(files)},
                      launch=True)
    if not layer.reused:
        for path in files:
            target = layer.path / path.relative_to(SHIM_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            target.chmod(0o644)
    return layer


def tree_sha256(root: Path) -> str:
    """A hash of a directory's paths, kinds, exec bits and contents (not times, not owners)."""
    digest = hashlib.sha256()
    for rel, path in walk(root):
        if path.is_symlink():
            digest.update(f"L {rel}\0{os.readlink(path)}\n".encode())
        elif path.is_file():
            exec_bit = "x" if os.access(path, os.X_OK) else "-"
            digest.update(f"F {rel}\0{exec_bit}{file_sha256(path)}\n".encode())
        else:
            digest.update(f"D {rel}\n".encode())
    return digest.hexdigest()


def walk(root: Path) -> Iterator[tuple[str, Path]]:
    """Every entry under ``root`` except :data:`UNHASHED` ones, in a stable order."""
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            children = sorted(current.iterdir(), key=lambda p: p.name, reverse=True)
        except OSError:
            continue
        for child in children:
            if child.name in UNHASHED:
                continue
            yield child.relative_to(root).as_posix(), child
            if child.is_dir() and not child.is_symlink():
                stack.append(child)


def file_sha256(path: Path) -> str:
    """The sha256 of one file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
