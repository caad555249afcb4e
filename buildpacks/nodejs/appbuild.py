"""The app's own build: its ``build`` script and, with a webpack config, its own webpack.

Both run in a private copy of the app (the workspace) whose ``node_modules`` is the
build-only layer holding every dependency, dev ones included. The user's directory is never
written. Whatever the build adds or changes, by top-level name (``dist``, ``.webpack``…), moves
into the ``build`` launch layer, and the app layer links those names there. That layer also
has its own ``node_modules`` link to the production dependencies and a copy of
``package.json``, because Node resolves modules and the module type from a file's real path,
which is in the layer.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from buildpacks.nodejs.layers import UNHASHED
from buildpacks.nodejs.options import Options
from buildpacks.nodejs.project import NodeProject
from lifecycle.errors import BuildpackFailed
from lifecycle.hookspecs import BuildContext

Snapshot = dict[str, tuple[str, int, int, int]]
# In the build layer for Node's sake, never linked into the app: module resolution and the
# module type ("type": "module") are looked up from a file's real path, which is the layer.
LAYER_OWN = frozenset({"node_modules", "package.json"})


@dataclass(frozen=True)
class BuildSteps:
    """What the app's build consists of; both None means there is nothing to run."""

    script: str | None = None
    script_command: str | None = None
    webpack_config: str | None = None

    @property
    def needed(self) -> bool:
        """Whether any step runs."""
        return self.script is not None or self.webpack_config is not None

    def describe(self) -> list[str]:
        """The steps as recorded in layer metadata and logs."""
        steps = []
        if self.script:
            steps.append(f"script {self.script}: {self.script_command}")
        if self.webpack_config:
            steps.append(f"webpack --config {self.webpack_config}")
        return steps


def steps_for(project: NodeProject, options: Options) -> BuildSteps:
    """The build script when the project has one, and webpack unless turned off or scripted."""
    script = options.build_script or None
    command = project.scripts.get(script) if script else None
    if command is None:
        script = None
    webpack = project.webpack_config if options.bundle else None
    if webpack and command and "webpack" in command:
        webpack = None  # the build script bundles already; running webpack twice would clash
    return BuildSteps(script, command, webpack)


def run_build(ctx: BuildContext, project: NodeProject, steps: BuildSteps, *,
              dev_modules: Path, workspace: Path, output: Path, deps_link: str) -> list[str]:
    """Run the steps in ``workspace``; move what they produced to ``output``; return its names."""
    copy_app(project.app_dir, workspace)
    (workspace / "node_modules").symlink_to(dev_modules)
    before = snapshot(workspace)
    if steps.script:
        ctx.log.info("running the %s script: %s", steps.script, steps.script_command)
        ctx.run([project.manager, "run", steps.script], cwd=workspace)
    if steps.webpack_config:
        webpack = dev_modules / ".bin" / "webpack"
        if not webpack.exists():
            raise BuildpackFailed(
                f"failed to bundle: the project has {steps.webpack_config} but webpack is not "
                "among its dependencies",
                hint="add webpack and webpack-cli to devDependencies, or set bundle = false "
                     'under [io.hybridless.buildpacks."hybridless/nodejs"]')
        ctx.log.info("bundling with the project's webpack (%s)", steps.webpack_config)
        ctx.run([str(webpack), "--config", steps.webpack_config], cwd=workspace)
    produced = changed_roots(before, snapshot(workspace))
    output.mkdir(parents=True, exist_ok=True)
    for name in produced:
        if name not in LAYER_OWN and ((workspace / name).exists()
                                      or (workspace / name).is_symlink()):
            shutil.move(str(workspace / name), str(output / name))
    (output / "node_modules").symlink_to(deps_link)
    if (workspace / "package.json").is_file():
        shutil.copyfile(workspace / "package.json", output / "package.json")
    names = built_names(output)
    if not names:
        ctx.log.warning("the build produced no new or changed files")
    return names


def built_names(output: Path) -> list[str]:
    """The top-level names a ``build`` layer holds for the app, not its own helpers."""
    return sorted(p.name for p in output.iterdir() if p.name not in LAYER_OWN)


def copy_app(app_dir: Path, workspace: Path) -> None:
    """Copy the app without installed dependencies or version control, keeping times."""
    if workspace.exists():
        shutil.rmtree(workspace)
    shutil.copytree(app_dir, workspace, symlinks=True,
                    ignore=lambda _dir, names: [n for n in names if n in UNHASHED])


def snapshot(root: Path) -> Snapshot:
    """Each entry's kind, size, mtime and mode, by path; ``node_modules`` is not looked into."""
    found: Snapshot = {}
    for current, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in UNHASHED]
        for name in [*dirs, *files]:
            path = Path(current, name)
            st = path.lstat()
            kind = "link" if path.is_symlink() else "dir" if name in dirs else "file"
            size = 0 if kind == "dir" else st.st_size
            mtime = 0 if kind == "dir" else st.st_mtime_ns
            found[path.relative_to(root).as_posix()] = (kind, size, mtime, st.st_mode)
    return found


def changed_roots(before: Snapshot, after: Snapshot) -> list[str]:
    """Top-level names under which an entry was added, removed or changed."""
    changed = {rel for rel in before.keys() | after.keys() if before.get(rel) != after.get(rel)}
    return sorted({rel.split("/", 1)[0] for rel in changed} - UNHASHED)
