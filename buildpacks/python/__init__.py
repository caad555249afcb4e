"""The Python runtime buildpack: dependencies in their own layer, the shim, one process per
function.

Detect passes on ``requirements.txt``, ``pyproject.toml`` or a descriptor function whose handler
is a ``.py`` file (or whose runtime is ``python3.x``). Build picks the Python version
(:mod:`buildpacks.python.versions`), installs the dependencies with pip into the ``deps`` launch
layer (reused, with no command run, while its inputs are unchanged), copies the shim into the
``shim`` launch layer and makes each function a ``python3 -m hybridless_shim`` process.
"""

from __future__ import annotations

from buildpacks.python import layers, package, versions
from buildpacks.python.installers import Interpreter
from buildpacks.python.options import OPTIONS_SCHEMA, parse_options
from buildpacks.python.processes import processes
from buildpacks.python.project import (
    INFERRED_HANDLER_FILES,
    PythonProject,
    foreign_functions,
    infer_function,
    python_functions,
)
from lifecycle.errors import BuildpackFailed
from lifecycle.hookspecs import (
    BUILDPACK_API,
    BuildContext,
    BuildResult,
    DetectContext,
    DetectResult,
    EnvValue,
    Layer,
    Prepend,
    hookimpl,
)

# Host artefacts: bytecode with host timestamps and paths, a host virtualenv. Credentials
# (pip.conf, .netrc, .env…) are on the engine's secrets list (lifecycle.exclusions).
APP_EXCLUDE = ("__pycache__", ".venv")


class PythonBuildpack:
    """Python functions run by the Lambda-simulating shim."""

    id = "hybridless/python"
    version = "0.1.0"
    api = BUILDPACK_API
    description = "Runs Python handlers (pip, uv.lock or poetry.lock dependencies) under the shim."
    # Layer reuse is keyed by the app's files and the interpreter, never by the index.
    hermetic = True
    options_schema = OPTIONS_SCHEMA
    tools = ("python3", "python3.10", "python3.11", "python3.12", "python3.13", "pip", "uv",
             "poetry")

    def detect(self, ctx: DetectContext) -> DetectResult:
        """Pass for Python descriptor functions, or infer one beside a dependency manifest."""
        if ctx.descriptor.functions:
            ours = python_functions(ctx.descriptor.functions, ctx.app_dir)
            if not ours and parse_options(ctx.options).install_project:
                # The project's own console scripts run as command functions; the Procfile
                # buildpack, listed after this one in the group, makes their processes.
                if not ctx.exists("pyproject.toml"):
                    return DetectResult.fails("install-project is set but there is no "
                                              "pyproject.toml")
                return DetectResult.passes("install-project: the project and its "
                                           "dependencies, for command functions")
            if not ours:
                return DetectResult.fails("no descriptor function has a Python handler (an "
                                          "existing .py file, or a python3.x runtime)")
            foreign = foreign_functions(ctx.descriptor, ctx.app_dir)
            if foreign and not ctx.descriptor.group:
                names = ", ".join(fn.name for fn in foreign)
                return DetectResult.fails(f"function(s) {names} are not Python; list each "
                                          "runtime buildpack in [[io.buildpacks.group]]")
            return DetectResult.passes(f"Python function(s): {', '.join(f.name for f in ours)}")
        manifests = [name for name in ("requirements.txt", "pyproject.toml") if ctx.exists(name)]
        if not manifests:
            return DetectResult.fails("no requirements.txt, pyproject.toml or descriptor "
                                      "function with a .py handler")
        inferred = infer_function(ctx.app_dir)
        if inferred is None:
            return DetectResult.fails(f"found {manifests[0]} but none of "
                                      f"{', '.join(INFERRED_HANDLER_FILES)}; add a function "
                                      "to project.toml")
        return DetectResult.passes(f"found {manifests[0]}; handler {inferred.handler}",
                                   functions=(inferred,))

    def build(self, ctx: BuildContext) -> BuildResult:
        """Install dependencies, add the shim, and make one process per Python function."""
        options = parse_options(ctx.options)
        functions = python_functions(ctx.functions, ctx.app_dir)
        if not functions and not options.install_project:
            raise BuildpackFailed("failed to build: no function has a Python handler",
                                  hint="give a function a .py handler or a python3.x runtime")
        project = PythonProject.read(ctx.app_dir)
        # With only command functions, their runtime (python3.x) still names the version.
        version = versions.select(functions or ctx.functions, ctx.app_dir,
                                  project.requires_python)
        ctx.log.info("Python %s (%s)", version.version, version.source)
        manifest = project.manifest()
        python = Interpreter(ctx, version.version)
        deps = None
        launch_env: dict[str, EnvValue] = {}
        cache = layers.pip_cache(ctx) if manifest.installs_anything or options.install_project \
            else None
        if manifest.installs_anything and cache is not None:
            deps = layers.install_dependencies(ctx, manifest, version, python, cache)
            launch_env["PATH"] = Prepend(f"{deps.image_path}/bin")
        else:
            ctx.log.info("no dependencies to install")
        if options.install_project and cache is not None:
            launch_env = install_project(ctx, version, python, cache, deps,
                                         shim_processes=bool(functions))
        if not functions:
            return BuildResult(launch_env=launch_env, app_exclude=APP_EXCLUDE,
                               labels={"io.hybridless.python.version": version.version})
        shim = layers.shim_layer(ctx, version, python)
        procs = processes(functions, ctx.descriptor, shim, deps)
        for proc in procs:
            ctx.log.info("process %s: %s (%s)", proc.name, proc.defaults.get("ENTRYPOINT"),
                         proc.event)
        return BuildResult(processes=procs, launch_env=launch_env, app_exclude=APP_EXCLUDE,
                           labels={"io.hybridless.python.version": version.version})


def install_project(ctx: BuildContext, version: versions.PythonVersion, python: Interpreter,
                    cache: Layer, deps: Layer | None, *, shim_processes: bool
                    ) -> dict[str, EnvValue]:
    """Install the app as a package; the launch env that finds its scripts and modules.

    ``PYTHONPATH`` goes into the image's environment only when no shim process runs: the
    launcher applies a process's defaults only where the environment leaves them unset, so an
    image-wide ``PYTHONPATH`` would hide the shim's own.
    """
    installed = package.project_layer(ctx, version, python, cache)
    bins = [f"{installed.image_path}/bin"]
    sites = [f"{installed.image_path}/site-packages"]
    if deps is not None:
        bins.append(f"{deps.image_path}/bin")
        sites.append(f"{deps.image_path}/site-packages")
    env: dict[str, EnvValue] = {"PATH": Prepend(":".join(bins))}
    if not shim_processes:
        env["PYTHONPATH"] = Prepend(":".join(sites))
    return env


@hookimpl
def hybridless_buildpacks() -> list[PythonBuildpack]:
    """Register the Python buildpack."""
    return [PythonBuildpack()]
