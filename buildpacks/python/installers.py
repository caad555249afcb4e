"""Installing dependencies into a directory: pip, or a lockfile's own tool exporting for pip.

Every command goes through ``ctx.run`` and is found through the build environment's ``PATH``,
so a build container (stacks issue) can supply its own interpreter and tools. pip always does
the installing; ``uv`` and ``poetry`` only turn their lockfile into a hashed requirements file,
so one installer, one cache and one ``--target`` layout serve every kind of project.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from buildpacks.python.project import Manifest
from lifecycle import safeio
from lifecycle.errors import BuildpackFailed
from lifecycle.hookspecs import BuildContext

_PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"
# pip reads these (and the files they name) from the build environment.
PIP_QUIET_ENV = {
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
    "PIP_ROOT_USER_ACTION": "ignore",
    "PYTHONDONTWRITEBYTECODE": "1",
}


@dataclass
class Interpreter:
    """The Python that installs and compiles: ``pythonX.Y`` on PATH, else ``python3``.

    Its version is checked once, lazily, so a build that reuses every layer runs nothing.
    """

    ctx: BuildContext
    version: str
    _checked: bool | None = field(default=None, init=False)

    @property
    def command(self) -> str:
        """The interpreter's name as it will be run (resolved through the build PATH)."""
        exact = f"python{self.version}"
        return exact if shutil.which(exact, path=self.ctx.env.get("PATH")) else "python3"

    def matches(self) -> bool:
        """Whether the interpreter runs and is the selected ``major.minor``."""
        if self._checked is None:
            result = self.ctx.run([self.command, "-c", _PROBE], check=False, capture=True)
            self._checked = result.returncode == 0 and result.output.strip() == self.version
            if not self._checked:
                self.ctx.log.debug("%s reports %r", self.command, result.output.strip())
        return self._checked

    def require(self, purpose: str, source: str) -> str:
        """The interpreter command, or a build failure that says what to install."""
        if not self.matches():
            raise BuildpackFailed(
                f"failed to {purpose}: Python {self.version} is needed ({source}), but neither "
                f"python{self.version} nor python3 on the build PATH is Python {self.version}",
                hint=f"install Python {self.version} on the build host, or ask for the host's "
                     "version with a descriptor runtime or .python-version")
        return self.command


def extra_config(app_dir: Path) -> dict[str, str]:
    """Point pip at the app's own ``pip.conf``/``.netrc``, which never reach the image."""
    env: dict[str, str] = {}
    for name in ("pip.conf", "pip.ini"):
        if safeio.is_regular(app_dir / name, root=app_dir):
            env["PIP_CONFIG_FILE"] = str(app_dir / name)
            break
    if safeio.is_regular(app_dir / ".netrc", root=app_dir):
        env["NETRC"] = str(app_dir / ".netrc")
    return env


def requirements_for(ctx: BuildContext, manifest: Manifest, workdir: Path) -> list[str]:
    """pip arguments naming what to install: ``-r file`` or the PEP 621 specifiers."""
    if manifest.kind == "requirements":
        return ["-r", manifest.files[0]]
    if manifest.kind == "pyproject":
        return list(manifest.dependencies)
    if manifest.kind == "uv":
        return ["--no-deps", "-r", str(_uv_export(ctx, workdir))]
    if manifest.kind == "poetry":
        return ["--no-deps", "-r", str(_poetry_export(ctx, workdir))]
    raise BuildpackFailed(f"failed to install dependencies: unknown source {manifest.kind!r}")


def secret_config(ctx: BuildContext) -> dict[str, str]:
    """The build secrets ``pip.conf`` and ``netrc`` (``--secret id=pip.conf,src=…``) as pip's
    ``PIP_CONFIG_FILE`` and ``NETRC``; they beat the app's own files."""
    env: dict[str, str] = {}
    for secret, variable in (("pip.conf", "PIP_CONFIG_FILE"), ("netrc", "NETRC")):
        path = ctx.secret(secret)
        if path is not None:
            env[variable] = str(path)
    return env


def compiler_env(env: Mapping[str, str]) -> dict[str, str]:
    """``CFLAGS`` with ``-g0``: pip builds each sdist in a randomly named temporary directory,
    which debug info would record, so two builds of one sdist would differ."""
    return {"CFLAGS": " ".join(part for part in (env.get("CFLAGS", ""), "-g0") if part)}


def pip_install(ctx: BuildContext, python: str, target: Path, cache_dir: Path,
                requirements: list[str]) -> None:
    """``python -m pip install --target`` without bytecode (it is compiled reproducibly later)."""
    env = {**PIP_QUIET_ENV, **extra_config(ctx.app_dir), **secret_config(ctx),
           **compiler_env(ctx.env)}
    ctx.run([python, "-m", "pip", "install", "--target", str(target), "--no-compile",
             "--no-warn-script-location", "--cache-dir", str(cache_dir), *requirements],
            env=env)


def _require_tool(ctx: BuildContext, tool: str, lockfile: str, install: str) -> str:
    if shutil.which(tool, path=ctx.env.get("PATH")) is None:
        raise BuildpackFailed(
            f"failed to install dependencies from {lockfile}: {tool} is not installed on the "
            "build host", hint=f"install it ({install}), or remove {lockfile} to install "
                               "pyproject.toml's dependencies with pip")
    return tool


def _uv_export(ctx: BuildContext, workdir: Path) -> Path:
    uv = _require_tool(ctx, "uv", "uv.lock", "pip install uv")
    out = workdir / "requirements.txt"
    ctx.run([uv, "export", "--frozen", "--format", "requirements-txt", "--no-dev",
             "--no-emit-project", "--no-header", "--output-file", str(out)],
            env={"UV_NO_PROGRESS": "1"})
    return out


def _poetry_export(ctx: BuildContext, workdir: Path) -> Path:
    poetry = _require_tool(ctx, "poetry", "poetry.lock",
                           "pip install poetry poetry-plugin-export")
    out = workdir / "requirements.txt"
    result = ctx.run([poetry, "export", "--format", "requirements.txt", "--output", str(out)],
                     check=False, capture=True)
    if result.returncode != 0:
        raise BuildpackFailed(
            f"failed to export poetry.lock: 'poetry export' exited with {result.returncode}: "
            f"{result.output.strip()[-500:]}",
            hint="Poetry 2 needs the export plugin: poetry self add poetry-plugin-export")
    return out
