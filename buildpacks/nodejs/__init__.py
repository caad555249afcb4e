"""The Node.js runtime buildpack: dependencies, the app's build, the shim, one process a function.

Layers (under ``/layers/hybridless_nodejs``):

- ``node`` (launch, build, cache): Node.js and npm at the newest version the app asks for,
  from the npm registry (:mod:`buildpacks.nodejs.runtime`); left out when the run image
  provides Node.js. Every build command runs with its ``bin`` first on ``PATH`` and
  ``npm_config_nodedir`` naming it; processes start its ``node``.
- ``deps`` (launch): production ``node_modules``, reused while the lockfile, the manifest's
  dependency fields, the package-manager config, the Node major and the command are unchanged;
  ``/var/task/node_modules`` links to it.
- ``build-deps`` (cache) and ``build`` (launch, cache): every dependency for the app's build
  script or webpack bundle, and what that build produced, linked into ``/var/task``.
- ``cache`` (cache): the package managers' download caches.
- ``shim`` (launch): the Lambda-simulating shim, keyed by the hash of its files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from buildpacks.nodejs import appbuild
from buildpacks.nodejs.install import check_tool, deps_metadata, install_for, install_into
from buildpacks.nodejs.layers import shim_layer, tree_sha256
from buildpacks.nodejs.options import OPTIONS_SCHEMA, parse_options
from buildpacks.nodejs.processes import processes_for
from buildpacks.nodejs.project import (
    INFERRED_HANDLER_FILES,
    NodeProject,
    infer_function,
    is_node_function,
)
from buildpacks.nodejs.runtime import NodeRuntime, stack_provides, wants_layer
from buildpacks.nodejs.runtime import install as install_node
from buildpacks.nodejs.versions import NodeVersion, host_major, requested_version, satisfies
from lifecycle.descriptor import Function
from lifecycle.errors import BuildpackFailed
from lifecycle.hookspecs import (
    BUILDPACK_API,
    BuildContext,
    BuildResult,
    DetectContext,
    DetectResult,
    EnvValue,
    Prepend,
    Require,
    hookimpl,
)

BUILDPACK_ID = "hybridless/nodejs"
VERSION_LABEL = "io.hybridless.nodejs"
# Kept out of the app layer: installed dependencies (they are a layer), and editor, CI and
# test-run leftovers. Credentials (.npmrc, .env…) are on the engine's secrets list
# (lifecycle.exclusions), which every buildpack shares.
APP_EXCLUDE = (
    "node_modules/", ".pnpm-store/",
    ".yarn/cache/", ".npm/", ".github/", ".vscode/", ".idea/", "coverage/", ".nyc_output/",
    ".eslintcache", "npm-debug.log*", "yarn-error.log", ".DS_Store",
)


class NodejsBuildpack:
    """Builds Node.js functions into processes run by the Hybridless shim."""

    id = BUILDPACK_ID
    version = "0.1.0"
    api = BUILDPACK_API
    priority = 100
    description = "Node.js functions: dependencies, the app's build, the Lambda-simulating shim."
    # Layer reuse is keyed by the app's files and the tools' versions, never by the registry.
    hermetic = True
    tools = ("node", "npm", "yarn", "pnpm")
    options_schema = OPTIONS_SCHEMA

    def detect(self, ctx: DetectContext) -> DetectResult:
        """Pass for a package.json or a JavaScript handler; infer ``main`` without functions."""
        try:
            project = NodeProject.read(ctx.app_dir)
        except BuildpackFailed as exc:
            return DetectResult.fails(str(exc))
        functions = ctx.descriptor.functions
        if functions:
            ours = [fn for fn in functions
                    if is_node_function(fn, ctx.app_dir, has_manifest=project.has_manifest)]
            if not any(fn.handler for fn in ours) and not (
                    project.has_manifest and all(fn.command for fn in functions)):
                return DetectResult.fails("no descriptor function has a JavaScript handler "
                                          "(.js, .mjs or .cjs)")
            inferred: tuple[Function, ...] = ()
            reason = f"{len(ours)} Node.js function(s)"
        else:
            fn = infer_function(ctx.app_dir)
            if fn is None:
                if not project.has_manifest:
                    return DetectResult.fails("no package.json and no JavaScript handler")
                if ctx.exists("Procfile"):
                    return DetectResult.fails("package.json but no handler file; the Procfile "
                                              "is left to hybridless/procfile")
                return DetectResult.fails(
                    "package.json but no handler: none of "
                    f"{', '.join(INFERRED_HANDLER_FILES)} exists; add one exporting 'handler', "
                    "or declare functions in project.toml")
            inferred = (fn,)
            reason = f"inferred function 'main' from {fn.entrypoint}"
        node = requested_version(functions or inferred, project.package, ctx.app_dir)
        return DetectResult.passes(
            f"{reason}; Node.js {node.requested} ({node.source})", functions=inferred,
            provides=("node",), requires=(Require("node", node.to_json()),))

    def build(self, ctx: BuildContext) -> BuildResult:
        """Install, run the app's build, add the shim, and make the processes."""
        options = parse_options(ctx.options)
        project = NodeProject.read(ctx.app_dir)
        node = requested_version(ctx.functions, project.package, ctx.app_dir)
        provides = stack_provides(ctx)
        runtime: NodeRuntime | None = None
        if wants_layer(options.node, provides):
            runtime = install_node(ctx, node)
            # Every later command (installs, the build script, webpack) runs this Node and
            # its npm, and compiles addons against its headers.
            ctx = dataclasses.replace(ctx, env={**ctx.env, **runtime.command_env(ctx.env)})
        cache = ctx.layer("cache", metadata={"version": 1}, cache=True)
        if runtime is not None:
            build_node = runtime.version
        else:
            build_node = _build_node_version(ctx, cache.path)
            runtime = NodeRuntime(build_node)
        major = host_major(build_node)
        _warn_on_mismatch(ctx, node, build_node, major, provides.get("nodejs"))

        links: dict[str, str] = {}
        deps_link = ""
        if project.has_manifest:
            prod = install_for(project, production=True, cache_dir=cache.path)
            deps = ctx.layer("deps", metadata=deps_metadata(project, prod, major), launch=True)
            if deps.reused:
                ctx.log.info("reusing dependencies (%s unchanged)", project.lockfile or
                             "package.json")
            else:
                check_tool(ctx, project.manager)
                install_into(ctx, project, prod, deps.path)
            deps_link = f"{deps.image_path}/node_modules"
            links["node_modules"] = deps_link

        built = {}
        steps = appbuild.steps_for(project, options)
        if project.has_manifest and steps.needed:
            everything = install_for(project, production=False, cache_dir=cache.path)
            dev_meta = deps_metadata(project, everything, major)
            dev = ctx.layer("build-deps", metadata=dev_meta, cache=True)
            if not dev.reused:
                check_tool(ctx, project.manager)
                install_into(ctx, project, everything, dev.path)
            output = ctx.layer("build", launch=True, cache=True, metadata={
                "source-sha256": tree_sha256(ctx.app_dir), "steps": steps.describe(),
                "dependencies": dev_meta, "deps-link": deps_link})
            if output.reused:
                names = appbuild.built_names(output.path)
                ctx.log.info("reusing the build output (sources unchanged): %s", ", ".join(names))
            else:
                # A layer with no flags is scratch space the lifecycle deletes after the build.
                workspace = ctx.layer("workspace")
                names = appbuild.run_build(
                    ctx, project, steps, dev_modules=dev.path / "node_modules",
                    workspace=workspace.path, output=output.path, deps_link=deps_link)
            for name in names:
                links[name] = f"{output.image_path}/{name}"
                built[name] = output.path / name

        shim = shim_layer(ctx)
        processes = processes_for(ctx.functions, ctx.descriptor, app_dir=ctx.app_dir,
                                  has_manifest=project.has_manifest,
                                  shim_image_path=shim.image_path, built=built, log=ctx.log,
                                  node=runtime.node_command)
        launch_env: dict[str, EnvValue] = {}
        build_env: dict[str, EnvValue] = {}
        if runtime.layer is not None:
            launch_env["PATH"] = Prepend(f"{runtime.layer.image_path}/bin")
            build_env["PATH"] = Prepend(str(runtime.layer.path / "bin"))
            build_env["npm_config_nodedir"] = str(runtime.layer.path)
        label = {**node.to_json(), "build-node": build_node,
                 "node-source": "layer" if runtime.layer is not None else "image",
                 "package-manager": project.manager,
                 "lockfile": project.lockfile, "build-steps": steps.describe()
                 if project.has_manifest else []}
        return BuildResult(processes=processes, app_exclude=APP_EXCLUDE, app_links=links,
                           launch_env=launch_env, build_env=build_env,
                           labels={VERSION_LABEL: json.dumps(label, sort_keys=True,
                                                             separators=(",", ":"))})


def _build_node_version(ctx: BuildContext, cache_dir: Path) -> str:
    """``node --version`` of the build host, remembered per binary so that a full cache hit
    starts no process: the answer is kept with the binary's path, size, mtime and inode."""
    found = shutil.which("node", path=ctx.env.get("PATH"))
    key = None
    if found:
        real = os.path.realpath(found)
        st = os.stat(real)
        key = f"{real}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
    memo = cache_dir / "node-version.json"
    try:
        known = json.loads(memo.read_text())
        if key is not None and known.get("key") == key:
            return str(known["version"])
    except (OSError, ValueError, AttributeError):
        pass
    version = ctx.run(["node", "--version"], capture=True).output.strip()
    if key is not None:
        memo.write_text(json.dumps({"key": key, "version": version}))
    return version


def _warn_on_mismatch(ctx: BuildContext, node: NodeVersion, build_node: str,
                      major: int | None, provided: str | None) -> None:
    # Without a node layer, commands run with the build host's Node; say so when it is not
    # the one asked for, since native modules are compiled for the build's Node.
    provided_major = host_major(f"{provided}.") if provided else None
    if provided_major is not None and not satisfies(node.requested, provided_major):
        ctx.log.warning("the app asks for Node.js %s (%s) but the stack's run image provides "
                        "Node.js %s", node.requested, node.source, provided)
    if major is not None and not satisfies(node.requested, major):
        ctx.log.warning("the app asks for Node.js %s (%s) but the build runs Node.js %s; "
                        "native modules may not load at run time", node.requested, node.source,
                        build_node)


@hookimpl
def hybridless_buildpacks() -> list[NodejsBuildpack]:
    """Register the Node.js buildpack."""
    return [NodejsBuildpack()]
