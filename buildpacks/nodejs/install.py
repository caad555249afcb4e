"""Installing dependencies with npm, yarn or pnpm into a layer directory.

The install runs in the layer, not in the app: ``npm ci`` deletes ``node_modules`` where it
runs, and the developer's own ``node_modules`` must neither be destroyed nor shipped. The
manifest, the lockfile and the package-manager config are copied in, and every other
top-level entry of the app is linked in, so that ``file:`` dependencies and the project's own
install scripts find their files; all of that is removed again after the install, so only
``node_modules`` stays. ``.npmrc`` may reference a token as
``${NPM_TOKEN}``: npm expands it from the build environment (``--env``), so the token itself
is never written anywhere.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildpacks.nodejs.layers import file_sha256
from buildpacks.nodejs.project import NodeProject
from lifecycle import safeio
from lifecycle.errors import BuildpackFailed
from lifecycle.hookspecs import BuildContext

# Copied next to the manifest for the install, then removed: they steer the package manager.
CONFIG_FILES = (".npmrc", ".yarnrc", ".yarnrc.yml", "pnpm-workspace.yaml")
# The install writes its own node_modules; version control is of no use to it.
NOT_LINKED = frozenset({"node_modules", ".git"})
MANIFEST_KEYS = ("dependencies", "optionalDependencies", "devDependencies", "peerDependencies",
                 "bundleDependencies", "bundledDependencies", "overrides", "resolutions",
                 "pnpm", "workspaces", "packageManager")
INSTALL_HINTS = {
    "yarn": "install yarn on the build host (`npm install -g yarn`, or `corepack enable`), "
            "or delete yarn.lock to install with npm",
    "pnpm": "install pnpm on the build host (`npm install -g pnpm`, or `corepack enable`), "
            "or delete pnpm-lock.yaml to install with npm",
}


@dataclass(frozen=True)
class Install:
    """One way of installing: the command line and where the tool keeps its download cache."""

    manager: str
    argv: tuple[str, ...]
    env: Mapping[str, str]

    @property
    def command(self) -> str:
        """The command as one string, as recorded in layer metadata."""
        return " ".join(self.argv)


def install_for(project: NodeProject, *, production: bool, cache_dir: Path) -> Install:
    """The install command for the project's package manager."""
    locked = project.lockfile is not None
    if project.manager == "yarn":
        argv = ["yarn", "install", "--non-interactive", f"--production={str(production).lower()}"]
        if locked:
            argv.append("--frozen-lockfile")
        return Install("yarn", tuple(argv), {"YARN_CACHE_FOLDER": str(cache_dir / "yarn")})
    if project.manager == "pnpm":
        argv = ["pnpm", "install", "--package-import-method=copy",
                f"--store-dir={cache_dir / 'pnpm'}"]
        argv += ["--frozen-lockfile"] if locked else ["--no-frozen-lockfile"]
        if production:
            argv.append("--prod")
        env = {} if production else {"NODE_ENV": "development"}
        return Install("pnpm", tuple(argv), env)
    argv = ["npm", "ci" if locked else "install", "--no-audit", "--no-fund"]
    argv.append("--omit=dev" if production else "--include=dev")
    return Install("npm", tuple(argv), {"npm_config_cache": str(cache_dir / "npm")})


def deps_metadata(project: NodeProject, install: Install, node_major: int | None
                  ) -> dict[str, Any]:
    """What the installed tree depends on; equal metadata means the layer is reused as is."""
    manifest = {k: project.package[k] for k in MANIFEST_KEYS if k in project.package}
    configs = {name: file_sha256(project.app_dir / name) for name in CONFIG_FILES
               if (project.app_dir / name).is_file()}
    return {
        "command": install.command,
        "lockfile": project.lockfile,
        "lockfile-sha256": file_sha256(project.app_dir / project.lockfile)
        if project.lockfile else None,
        "manifest-sha256": hashlib.sha256(
            json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest(),
        "config-sha256": configs,
        "node-major": node_major,
        "arch": platform.machine(),
    }


def check_tool(ctx: BuildContext, manager: str) -> None:
    """Fail early, saying what to install, when yarn or pnpm is not on the build host."""
    if manager not in INSTALL_HINTS:
        return
    try:
        probe = ctx.run([manager, "--version"], check=False, capture=True)
    except BuildpackFailed as exc:
        raise BuildpackFailed(
            f"failed to install dependencies: the project has a {manager} lockfile but "
            f"'{manager}' is not installed", hint=INSTALL_HINTS[manager]) from exc
    if probe.returncode != 0:
        raise BuildpackFailed(
            f"failed to install dependencies: '{manager} --version' exited with "
            f"{probe.returncode}: {probe.output.strip()[:300]}", hint=INSTALL_HINTS[manager])


def secret_env(ctx: BuildContext) -> dict[str, str]:
    """The build secret ``npmrc`` (``--secret id=npmrc,src=~/.npmrc``) as npm's user config.

    npm, yarn 1 and pnpm all read ``NPM_CONFIG_USERCONFIG``; the file stays outside the app
    and the layer, and only its path (which is not recorded) reaches the command.
    """
    path = ctx.secret("npmrc")
    return {} if path is None else {"NPM_CONFIG_USERCONFIG": str(path)}


def install_into(ctx: BuildContext, project: NodeProject, install: Install, target: Path) -> None:
    """Install into ``target/node_modules``, leaving nothing else in ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    staged: list[Path] = []
    for name in ("package.json", project.lockfile, *CONFIG_FILES):
        if name and safeio.is_regular(project.app_dir / name, root=project.app_dir):
            shutil.copyfile(project.app_dir / name, target / name)
            staged.append(target / name)
    for source in sorted(project.app_dir.iterdir()):
        if source.name not in NOT_LINKED and not (target / source.name).exists():
            (target / source.name).symlink_to(source.resolve())
            staged.append(target / source.name)
    try:
        if project.has_dependencies:
            ctx.run(install.argv, env={**install.env, **secret_env(ctx)}, cwd=target)
    finally:
        for path in staged:
            path.unlink(missing_ok=True)
    # An app without dependencies still gets the directory its link points at.
    (target / "node_modules").mkdir(exist_ok=True)
    for leftover in sorted(target.iterdir()):
        if leftover.name != "node_modules":
            _remove(leftover)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
