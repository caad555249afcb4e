"""A third-party hybridless buildpack: serve a static site through a small HTTP server.

The site (``public/``, ``dist/``, ``_site/`` or the ``root`` option) is copied into a launch
layer, and a second launch layer holds the server: a POSIX shell script that, when the
container starts, picks the first HTTP server the run image has (busybox httpd, then
``python3``, then ``node``). Both layers carry metadata, so an unchanged site or server is
re-referenced by digest on the next build instead of being re-packed.

Options, validated against :data:`OPTIONS_SCHEMA`, live in project.toml::

    [io.hybridless.buildpacks."examples/static-site"]
    root = "dist"                           # the directory to serve
    build-command = ["npm", "run", "build"] # run first (its output is the site)
    server = "auto"                         # auto | busybox | python | node
    port = 8080
    health-route = "/health"
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from lifecycle.errors import DescriptorSchemaError
from lifecycle.functions import health_route
from lifecycle.hookspecs import (
    BUILDPACK_API,
    BuildContext,
    BuildResult,
    Default,
    DetectContext,
    DetectResult,
    Process,
    hookimpl,
)

__version__ = "1.0.0"

BUILDPACK_ID = "examples/static-site"
ROOT_CANDIDATES = ("public", "dist", "_site")
INDEX = "index.html"
PROCESS = "web"
SERVER_FILES = {"serve": "bin/serve", "server.py": "lib/server.py",
                "server.cjs": "lib/server.cjs"}

DOTDOT = r"(^|/)\.\.(/|$)"  # paths must stay inside the app and the site layer
OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "root": {"type": "string", "pattern": r"^[^/]", "not": {"pattern": DOTDOT}},
        "build-command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "server": {"enum": ["auto", "busybox", "python", "node"]},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "health-route": {"type": "string", "pattern": "^/[^?#]*$",
                         "not": {"pattern": DOTDOT}},
    },
}
"""The ``[io.hybridless.buildpacks."examples/static-site"]`` table's JSON schema."""


def options_problem(options: Mapping[str, Any]) -> str | None:
    """Why ``options`` fail :data:`OPTIONS_SCHEMA` (naming the key), or None when they pass."""
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(OPTIONS_SCHEMA).iter_errors(dict(options)))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties":
        valid = ", ".join(sorted(OPTIONS_SCHEMA["properties"]))
        return f"{error.message}; valid keys: {valid}"
    return f"{where}: {error.message}" if where else error.message


def find_root(app_dir: Path, options: Mapping[str, Any]) -> str | None:
    """The site directory relative to the app: the ``root`` option, else the first candidate."""
    if "root" in options:
        return str(options["root"]).strip("/")
    for candidate in ROOT_CANDIDATES:
        if (app_dir / candidate / INDEX).is_file():
            return candidate
    return None


def tree_digest(directory: Path) -> str:
    """A digest of the files under ``directory`` (paths, exec bits, contents): the reuse key."""
    hasher = hashlib.sha256()
    for path in sorted(directory.rglob("*"), key=lambda p: p.as_posix().encode()):
        rel = path.relative_to(directory).as_posix()
        if path.is_symlink():
            hasher.update(f"L {rel} {os.readlink(path)}\n".encode())
        elif path.is_file():
            hasher.update(f"F {rel} {os.access(path, os.X_OK)}\n".encode())
            hasher.update(hashlib.sha256(path.read_bytes()).digest())
    return f"sha256:{hasher.hexdigest()}"


class StaticSiteBuildpack:
    """Serves a directory of static files; see the module docstring."""

    id = BUILDPACK_ID
    version = __version__
    api = BUILDPACK_API
    # After the language buildpacks (100), before the Procfile fallback (900).
    priority = 800
    description = "Serves a static site (public/, dist/, _site/) with a small HTTP server."
    options_schema = OPTIONS_SCHEMA

    def detect(self, ctx: DetectContext) -> DetectResult:
        """Pass for an app with a site directory and no processes of its own."""
        problem = options_problem(ctx.options)
        if problem:
            return DetectResult.fails(f"invalid options: {problem}")
        explicit = bool(ctx.options)
        if not explicit and (ctx.exists("Procfile") or ctx.descriptor.functions):
            return DetectResult.fails("the app declares its own processes (Procfile or "
                                      "descriptor functions); configure this buildpack's "
                                      "options to serve it as a static site anyway")
        if "build-command" in ctx.options:
            return DetectResult.passes("a build command makes the site",
                                       provides=("static-site",))
        root = find_root(ctx.app_dir, ctx.options)
        if root is None:
            return DetectResult.fails(f"no {INDEX} in any of {', '.join(ROOT_CANDIDATES)}")
        if not (ctx.app_dir / root / INDEX).is_file():
            return DetectResult.fails(f"no {INDEX} in {root}/")
        return DetectResult.passes(f"found {root}/{INDEX}", provides=("static-site",))

    def build(self, ctx: BuildContext) -> BuildResult:
        """Run the build command, copy the site and the server into launch layers."""
        problem = options_problem(ctx.options)
        if problem:
            raise DescriptorSchemaError(
                f'failed to read [io.hybridless.buildpacks."{self.id}"]: {problem}')
        if "build-command" in ctx.options:
            ctx.run(list(ctx.options["build-command"]))
        root = find_root(ctx.app_dir, ctx.options)
        site_dir = ctx.app_dir / root if root else None
        if site_dir is None or not (site_dir / INDEX).is_file():
            raise DescriptorSchemaError(
                f"failed to find the site: no {INDEX} in {root or ', '.join(ROOT_CANDIDATES)}",
                hint=f'set root in [io.hybridless.buildpacks."{self.id}"]')
        route = str(ctx.options.get("health-route")
                    or health_route(ctx.descriptor.project_id, PROCESS))

        site = ctx.layer("site", launch=True,
                         metadata={"files": tree_digest(site_dir), "health-route": route})
        if site.reused:
            ctx.log.info("site unchanged: reusing %s", site.image_path)
        else:
            shutil.copytree(site_dir, site.path, symlinks=True, dirs_exist_ok=True)
            self._write_health_file(ctx, site.path, route)
            ctx.log.info("copied %s/ into %s", root, site.image_path)

        server = ctx.layer("server", launch=True,
                           metadata={"version": self.version, "files": _server_digest()})
        if not server.reused:
            for name, rel in SERVER_FILES.items():
                target = server.path / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes((resources.files(__name__) / "server" / name)
                                   .read_bytes())
                target.chmod(0o755 if rel.startswith("bin/") else 0o644)

        defaults = {"PORT": str(ctx.options.get("port", 8080)), "HEALTH_ROUTE": route,
                    "HYBRIDLESS_RUNTIME": "true", "HYBRIDLESS_EVENT_TYPE": "httpd"}
        if ctx.descriptor.stage is not None:
            defaults["STAGE"] = ctx.descriptor.stage
        return BuildResult(
            processes=(Process(PROCESS, (f"{server.image_path}/bin/serve",), event="httpd",
                               defaults=defaults, default=True),),
            launch_env={"STATIC_ROOT": site.image_path,
                        "STATIC_SERVER": Default(str(ctx.options.get("server", "auto")))},
            labels={"dev.hybridless.examples.static-site.root": root or ""},
            # The site ships in its own layer; a second copy in the app layer would be waste.
            app_exclude=(f"/{root}/",),
        )

    @staticmethod
    def _write_health_file(ctx: BuildContext, site: Path, route: str) -> None:
        # busybox httpd only serves files, so the health route it answers is a file; the
        # python and node servers answer $HEALTH_ROUTE itself, whatever it is set to at run time.
        target = site / route.lstrip("/")
        if target.exists():
            ctx.log.warning("the site already has %s; not replacing it with the health check",
                            route)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("Healthy!")


def _server_digest() -> str:
    hasher = hashlib.sha256()
    for name in sorted(SERVER_FILES):
        hasher.update((resources.files(__name__) / "server" / name).read_bytes())
    return f"sha256:{hasher.hexdigest()}"


@hookimpl
def hybridless_buildpacks() -> list[StaticSiteBuildpack]:
    """Register the static-site buildpack."""
    return [StaticSiteBuildpack()]
