"""The buildpack's layers: dependencies, pip's cache, and the shim.

Reuse is decided by metadata alone, so nothing here runs before the engine has said whether a
layer is reused: a rebuild with unchanged inputs runs no command at all.

Reproducibility: pip installs with ``--no-compile``; bytecode is then compiled with hash-based
``unchecked-hash`` pycs (no timestamps), a fixed ``PYTHONHASHSEED`` (set and frozenset
constants are marshalled in hash order) and source paths rewritten to where the files sit in
the image, so two builds from different host directories write the same bytes. Script
shebangs that pip points at the build host's interpreter are rewritten to ``python3``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from buildpacks.python import installers
from buildpacks.python.installers import Interpreter
from buildpacks.python.project import Manifest
from buildpacks.python.versions import PythonVersion
from lifecycle import safeio
from lifecycle.hookspecs import BuildContext, Layer

SHIM_SOURCE = Path(__file__).resolve().parent / "shim" / "hybridless_shim"
LAYOUT = 1
"""Bumped whenever what this module puts in a layer changes, so old layers are not reused."""

PORTABLE_SHEBANG = b"#!/usr/bin/env python3"
_SECRET_ENV_PREFIXES = ("PIP_", "UV_", "POETRY_")


def digest_files(root: Path, names: list[str] | tuple[str, ...]) -> str:
    """sha256 over the names and bytes of app-relative files, in the given order."""
    h = hashlib.sha256()
    for name in names:
        data = safeio.read_bytes(root / name, root=root)
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return f"sha256:{h.hexdigest()}"


def shim_files(root: Path = SHIM_SOURCE) -> list[str]:
    """The shim's source files, sorted; tool caches (``.mypy_cache``, bytecode) stay out."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py")
                  if p.is_file() and not any(part.startswith((".", "__pycache__"))
                                             for part in p.relative_to(root).parts))


def installer_env_digest(env: Mapping[str, str], app_dir: Path) -> str:
    """A digest of installer settings (index URLs, config files) that change what resolves.

    Only a digest is kept: these values and files may carry tokens.
    """
    h = hashlib.sha256()
    for key in sorted(k for k in env if k.startswith(_SECRET_ENV_PREFIXES)):
        h.update(f"{key}={env[key]}\0".encode())
    for name in ("pip.conf", "pip.ini"):
        if safeio.is_regular(app_dir / name, root=app_dir):
            h.update(name.encode() + b"\0" + safeio.read_bytes(app_dir / name, root=app_dir))
    return f"sha256:{h.hexdigest()}"


def deps_metadata(ctx: BuildContext, manifest: Manifest, version: PythonVersion
                  ) -> dict[str, Any]:
    """What decides whether installed dependencies can be reused."""
    return {
        "layout": LAYOUT,
        "python": version.version,
        "source": manifest.kind,
        "inputs": digest_files(ctx.app_dir, manifest.files),
        "dependencies": list(manifest.dependencies),
        "installer-settings": installer_env_digest(ctx.env, ctx.app_dir),
        "stack": ctx.stack,
        "arch": platform.machine(),
    }


def pip_cache(ctx: BuildContext) -> Layer:
    """pip's download and wheel cache, kept between builds and never in the image.

    Declared on every build that has dependencies, reused or not: the engine drops layers a
    build does not declare.
    """
    return ctx.layer("pip-cache", metadata={"layout": LAYOUT}, cache=True)


def install_dependencies(ctx: BuildContext, manifest: Manifest, version: PythonVersion,
                         python: Interpreter, cache: Layer) -> Layer:
    """The ``deps`` launch layer: ``site-packages`` and ``bin``; filled only when not reused."""
    layer = ctx.layer("deps", metadata=deps_metadata(ctx, manifest, version), launch=True)
    if layer.reused:
        ctx.log.info("dependencies unchanged (%s): reusing the deps layer", manifest.kind)
        keep_pip(ctx)
        return layer
    interpreter = python.require(f"install dependencies from {', '.join(manifest.files)}",
                                 version.source)
    site = layer.path / "site-packages"
    workdir = layer.path / ".export"
    workdir.mkdir(parents=True)
    requirements = installers.requirements_for(ctx, manifest, workdir)
    ctx.log.info("installing dependencies from %s with Python %s",
                 ", ".join(manifest.files), version.version)
    installer = pip_python(ctx, interpreter, version)
    installers.pip_install(ctx, installer, site, cache.path, requirements)
    shutil.rmtree(workdir)
    move_scripts(site, layer.path / "bin")
    compile_bytecode(ctx, interpreter, site, f"{layer.image_path}/site-packages")
    return layer


def keep_pip(ctx: BuildContext) -> None:
    """Declare the previous build's pip virtualenv again, as it was, without running anything.

    A layer a build does not declare is deleted (and left out of a cache image), so a build
    that reuses its dependencies would otherwise throw away the venv the next dependency
    change needs.
    """
    previous = ctx.previous.get("pip")
    if previous is not None:
        ctx.layer("pip", metadata=previous, cache=True)


def pip_python(ctx: BuildContext, interpreter: str, version: PythonVersion) -> str:
    """An interpreter that has pip: ``interpreter`` itself, else a virtualenv made from it.

    Debian's ``python3`` has no pip module unless ``python3-pip`` is installed (build images
    often have only ``python3-venv``); a venv gets pip from the wheel ``ensurepip`` carries.
    The venv is a cache layer, never in the image, and only runs pip: packages still install
    with ``--target`` for ``interpreter``'s version.
    """
    probe = ctx.run([interpreter, "-m", "pip", "--version"], check=False, capture=True)
    if probe.returncode == 0:
        return interpreter
    layer = ctx.layer("pip", metadata={"layout": LAYOUT, "python": version.version},
                      cache=True)
    if not layer.reused:
        ctx.log.info("%s has no pip: making a virtualenv with pip to install with", interpreter)
        ctx.run([interpreter, "-m", "venv", "--clear", str(layer.path)])
    return str(layer.path / "bin" / "python")


def shim_layer(ctx: BuildContext, version: PythonVersion, python: Interpreter) -> Layer:
    """The ``shim`` launch layer: a copy of ``hybridless_shim``, compiled when possible."""
    files = shim_files()
    metadata = {"layout": LAYOUT, "files": digest_files(SHIM_SOURCE, files),
                "python": version.version}
    layer = ctx.layer("shim", metadata=metadata, launch=True)
    if layer.reused:
        return layer
    for name in files:
        target = layer.path / "hybridless_shim" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHIM_SOURCE / name, target)
    if python.matches():
        compile_bytecode(ctx, python.command, layer.path, layer.image_path)
    else:
        ctx.log.info("shim left uncompiled: no Python %s on the build PATH", version.version)
    return layer


def compile_bytecode(ctx: BuildContext, python: str, directory: Path, image_dir: str) -> None:
    """Hash-based pycs whose recorded source paths are the image's, not the build host's."""
    if not directory.is_dir():
        return
    result = ctx.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
                      "unchecked-hash", "-s", str(directory), "-p", image_dir, str(directory)],
                     env={"PYTHONHASHSEED": "0"}, check=False)
    if result.returncode != 0:
        # Packages ship files that are not meant to compile (templates, other-version tests);
        # those stay source-only, and everything else keeps its bytecode.
        ctx.log.warning("some files under %s did not compile; they load from source",
                        image_dir)


def move_scripts(site: Path, bin_dir: Path) -> None:
    """Move pip's ``--target`` scripts next to ``site-packages`` with a portable shebang."""
    scripts = site / "bin"
    bin_dir.mkdir(exist_ok=True)
    if not scripts.is_dir():
        return
    for script in sorted(scripts.iterdir()):
        target = bin_dir / script.name
        shutil.move(str(script), target)
        if target.is_file() and not target.is_symlink():
            _rewrite_shebang(target)
    scripts.rmdir()


def _rewrite_shebang(path: Path) -> None:
    data = path.read_bytes()
    if not data.startswith(b"#!"):
        return
    first, sep, rest = data.partition(b"\n")
    if b"python" in first:
        mode = path.stat().st_mode
        path.write_bytes(PORTABLE_SHEBANG + sep + rest)
        os.chmod(path, mode)
