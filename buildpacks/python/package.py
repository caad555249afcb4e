"""The ``project`` layer: the app itself installed as a package (option ``install-project``).

A tool such as a command-line program is only usable once installed: its console scripts and
entry points live in the ``.dist-info`` that pip writes, not in the source tree. The project is
installed without its dependencies (those stay in the ``deps`` layer, reused while
``pyproject.toml`` is unchanged), so a change to the code reinstalls only this small layer.

pip builds a local directory in place (setuptools writes ``build/`` and ``*.egg-info`` next to
the sources), and the app directory may be read-only, so the regular files are copied to a
scratch directory first. Symbolic links are not copied: one could point outside the app, and
the wheel would then carry a file of the build host.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

from buildpacks.python import installers, layers
from buildpacks.python.installers import Interpreter
from buildpacks.python.versions import PythonVersion
from lifecycle import safeio
from lifecycle.errors import BuildpackFailed
from lifecycle.hookspecs import BuildContext, Layer

# Tool output and caches that never belong to the package's sources.
_SKIP_DIRS = frozenset({"__pycache__", "node_modules"})
_SKIP_TOP = frozenset({"build", "dist"})
_LIMIT = 1 << 30  # sources, not uploads: only a sanity bound


def source_files(app_dir: Path) -> list[str]:
    """The app's regular files that pip may package, app-relative and sorted.

    Hidden entries (``.git``, ``.venv``, tool caches), ``__pycache__``, ``node_modules``,
    ``*.egg-info`` and top-level ``build``/``dist`` are left out, as are symbolic links.
    """
    found: list[str] = []

    def unreadable(exc: OSError) -> None:
        raise BuildpackFailed(f"failed to read the project's sources: {exc.filename}: "
                              f"{safeio.describe(exc)}",
                              hint="make every file of the app readable by the build") from exc

    for current, dirs, files in os.walk(app_dir, onerror=unreadable, followlinks=False):
        relative = Path(current).relative_to(app_dir)
        dirs[:] = sorted(d for d in dirs if not _skipped_dir(d, top=relative == Path(".")))
        for name in files:
            if name.startswith("."):
                continue
            path = Path(current) / name
            if stat.S_ISREG(path.lstat().st_mode):
                found.append((relative / name).as_posix())
    return sorted(found)


def _skipped_dir(name: str, *, top: bool) -> bool:
    return (name.startswith(".") or name in _SKIP_DIRS or name.endswith(".egg-info")
            or (top and name in _SKIP_TOP))


def sources_digest(app_dir: Path, files: list[str]) -> str:
    """sha256 over the names, modes and bytes of ``files``."""
    h = hashlib.sha256()
    for name in files:
        try:
            data = safeio.read_bytes(app_dir / name, root=app_dir, limit=_LIMIT)
        except OSError as exc:
            raise BuildpackFailed(f"failed to read the project's source {name}: "
                                  f"{safeio.describe(exc)}",
                                  hint="make every file of the app readable by the build"
                                  ) from exc
        executable = os.access(app_dir / name, os.X_OK)
        h.update(f"{name}\0{int(executable)}\0{len(data)}\0".encode())
        h.update(data)
    return f"sha256:{h.hexdigest()}"


def project_layer(ctx: BuildContext, version: PythonVersion, python: Interpreter,
                  cache: Layer) -> Layer:
    """The ``project`` launch layer: ``site-packages`` with the app's package, and ``bin``."""
    if not (ctx.app_dir / "pyproject.toml").is_file():
        raise BuildpackFailed("failed to install the project: install-project is set but the "
                              "app has no pyproject.toml",
                              hint="add a pyproject.toml with a [build-system] table, or turn "
                                   "install-project off")
    files = source_files(ctx.app_dir)
    metadata = {"layout": layers.LAYOUT, "python": version.version,
                "sources": sources_digest(ctx.app_dir, files),
                "installer-settings": layers.installer_env_digest(ctx.env, ctx.app_dir),
                "stack": ctx.stack}
    layer = ctx.layer("project", metadata=metadata, launch=True)
    if layer.reused:
        ctx.log.info("project sources unchanged: reusing the project layer")
        layers.keep_pip(ctx)
        return layer
    interpreter = python.require("install the project from pyproject.toml", version.source)
    scratch = layer.path / ".export" / "src"
    for name in files:
        target = scratch / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ctx.app_dir / name, target, follow_symlinks=False)
    ctx.log.info("installing the project itself (%d files) with Python %s", len(files),
                 version.version)
    site = layer.path / "site-packages"
    installer = layers.pip_python(ctx, interpreter, version)
    installers.pip_install(ctx, installer, site, cache.path, ["--no-deps", str(scratch)])
    shutil.rmtree(layer.path / ".export")
    # PEP 610's record of where pip installed from names the scratch directory of this build.
    for recorded in site.glob("*.dist-info/direct_url.json"):
        recorded.unlink()
    layers.move_scripts(site, layer.path / "bin")
    layers.compile_bytecode(ctx, interpreter, site, f"{layer.image_path}/site-packages")
    return layer
