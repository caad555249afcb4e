"""What a Node.js app looks like on disk: its manifest, lockfile, handlers and build steps.

Read-only: detect calls it, so nothing here runs a command or writes a file.
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle import safeio
from lifecycle.descriptor import Function
from lifecycle.errors import BuildpackFailed

JS_SUFFIXES = (".js", ".mjs", ".cjs")
# docs/reference.md §3: where a descriptor-less app's handler is looked for, in this order.
INFERRED_HANDLER_FILES = ("index.js", "handler.js", "src/index.js", "src/handler.js")
INFERRED_FUNC = "handler"
WEBPACK_CONFIGS = ("webpack.config.js", "webpack.config.cjs", "webpack.config.mjs",
                   "webpack.config.ts")
# Lockfiles in order of precedence: a project carrying several is most likely using the first.
LOCKFILES = (("package-lock.json", "npm"), ("npm-shrinkwrap.json", "npm"),
             ("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "yarn"))
_EXPORTS_HANDLER = re.compile(
    r"exports\.handler\b|export\s+(?:async\s+)?(?:function\*?|const|let|var)\s+handler\b"
    r"|export\s*\{[^}]*\bhandler\b|module\.exports\s*=")


@dataclass(frozen=True)
class NodeProject:
    """The parts of an app directory the buildpack decides by."""

    app_dir: Path
    package: Mapping[str, Any] = field(default_factory=dict)
    has_manifest: bool = False
    lockfile: str | None = None
    manager: str = "npm"

    @classmethod
    def read(cls, app_dir: Path) -> NodeProject:
        """Read ``package.json`` (if any) and find the lockfile."""
        manifest = app_dir / "package.json"
        package: Mapping[str, Any] = {}
        if safeio.is_regular(manifest, root=app_dir):
            package = parse_manifest(manifest)
        lockfile, manager = None, "npm"
        for name, tool in LOCKFILES:
            if safeio.is_regular(app_dir / name, root=app_dir):
                lockfile, manager = name, tool
                break
        if lockfile is None and isinstance(package.get("packageManager"), str):
            # corepack's field ("pnpm@9.1.0") names the tool even before a lockfile exists.
            named = package["packageManager"].split("@", 1)[0]
            manager = named if named in ("npm", "yarn", "pnpm") else "npm"
        return cls(app_dir, package, safeio.is_regular(manifest, root=app_dir), lockfile,
                   manager)

    @property
    def scripts(self) -> Mapping[str, str]:
        """``package.json`` scripts, keeping only string values."""
        scripts = self.package.get("scripts")
        if not isinstance(scripts, Mapping):
            return {}
        return {k: v for k, v in scripts.items() if isinstance(v, str)}

    @property
    def webpack_config(self) -> str | None:
        """The project's webpack config file name, when it has one."""
        for name in WEBPACK_CONFIGS:
            if (self.app_dir / name).is_file():
                return name
        return None

    @property
    def has_dependencies(self) -> bool:
        """Whether installing could put anything in ``node_modules``."""
        return any(isinstance(self.package.get(key), Mapping) and self.package[key]
                   for key in ("dependencies", "optionalDependencies", "devDependencies"))


def parse_manifest(path: Path) -> Mapping[str, Any]:
    """``package.json`` as a mapping; a broken one fails the build with the parser's words."""
    try:
        data = json.loads(safeio.read_text(path, root=path.parent))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BuildpackFailed(f"failed to read {path.name}: {exc}",
                              hint="fix package.json so that `npm install` accepts it") from exc
    if not isinstance(data, Mapping):
        raise BuildpackFailed(f"failed to read {path.name}: the top level is not an object")
    return data


def handler_file(app_dir: Path, entrypoint: str) -> Path | None:
    """The file a handler path names, looked up as the shim does (exact, suffixes, index)."""
    base = app_dir / entrypoint
    if base.is_file():
        return base
    for suffix in JS_SUFFIXES:
        candidate = base.with_name(base.name + suffix)
        if candidate.is_file():
            return candidate
    for suffix in JS_SUFFIXES:
        candidate = base / f"index{suffix}"
        if candidate.is_file():
            return candidate
    return None


def is_node_function(fn: Function, app_dir: Path, *, has_manifest: bool) -> bool:
    """A function this buildpack runs: its handler is a JS file, or may become one by a build.

    A handler file that does not exist yet may be produced by the build script, so with a
    ``package.json`` it counts unless a non-JS file (``handler.py``) already claims the name.
    """
    if fn.handler is None:
        return has_manifest and fn.command is not None
    found = handler_file(app_dir, fn.entrypoint)
    if found is not None:
        return found.suffix in JS_SUFFIXES or found.suffix == ""
    base = app_dir / fn.entrypoint
    other_language = base.parent.is_dir() and any(base.parent.glob(f"{glob.escape(base.name)}.*"))
    return has_manifest and not other_language


def infer_function(app_dir: Path) -> Function | None:
    """An ``httpd`` function ``main`` for the first candidate exporting a handler.

    The inference rule of docs/reference.md §3.
    """
    existing = [name for name in INFERRED_HANDLER_FILES
                if safeio.is_regular(app_dir / name, root=app_dir)]
    for name in existing:
        text = safeio.read_text(app_dir / name, root=app_dir, errors="replace")
        if _EXPORTS_HANDLER.search(text):
            return _inferred(name)
    return _inferred(existing[0]) if existing else None


def _inferred(file_name: str) -> Function:
    stem = file_name.rsplit(".", 1)[0]
    return Function(name="main", handler=f"{stem}.{INFERRED_FUNC}", event="httpd")
