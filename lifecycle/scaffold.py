"""``buildpacks new NAME``: write a buildpack package skeleton that installs with pip.

The skeleton is a complete, working package: a pyproject that registers the buildpack in the
``hybridless.buildpacks`` entry-point group, the buildpack module (it detects a marker file,
puts a script in a launch layer and declares a process that runs it), a README, and tests
that pass with the fixtures of :mod:`lifecycle.testing`. Authors replace the behaviour and
keep the shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle import __version__
from lifecycle.errors import UsageError
from lifecycle.hookspecs import ENTRY_POINT_GROUP

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?$")


@dataclass(frozen=True)
class Names:
    """Every name the skeleton derives from the buildpack id."""

    buildpack_id: str
    slug: str
    distribution: str
    module: str
    entry_point: str
    process: str
    marker: str

    @classmethod
    def of(cls, name: str) -> Names:
        """Names for buildpack id ``name`` (``acme/ruby`` or ``ruby``); UsageError when invalid."""
        if not NAME_RE.match(name):
            raise UsageError(
                f"failed to create buildpack {name!r}: not a valid buildpack id",
                hint="use lower-case letters, digits, '.', '_' and '-', with one optional "
                     "'/' after a namespace, e.g. acme/ruby")
        slug = name.replace("/", "-")
        distribution = slug if slug.startswith("hybridless-") else f"hybridless-{slug}"
        last = name.rsplit("/", 1)[-1]
        return cls(buildpack_id=name, slug=slug, distribution=distribution,
                   module=re.sub(r"[^a-z0-9_]", "_", distribution), entry_point=slug,
                   process=last, marker=f"{last}.txt")


@dataclass(frozen=True)
class Created:
    """What :func:`write` wrote."""

    names: Names
    directory: Path
    files: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``buildpacks new --json`` document."""
        return {"id": self.names.buildpack_id, "distribution": self.names.distribution,
                "module": self.names.module, "entry_point": self.names.entry_point,
                "group": ENTRY_POINT_GROUP, "directory": str(self.directory),
                "files": list(self.files)}


def render(names: Names) -> dict[str, str]:
    """The skeleton's files, path → content."""
    values = {
        "@ID@": names.buildpack_id, "@SLUG@": names.slug, "@DIST@": names.distribution,
        "@MODULE@": names.module, "@PROCESS@": names.process, "@MARKER@": names.marker,
        "@EP@": names.entry_point, "@GROUP@": ENTRY_POINT_GROUP,
        "@LIFECYCLE@": __version__,
    }
    pattern = re.compile("|".join(re.escape(token) for token in values))
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        ".gitignore": _GITIGNORE,
        f"src/{names.module}/__init__.py": _MODULE,
        "tests/test_buildpack.py": _TEST,
    }
    return {path: pattern.sub(lambda m: values[m.group(0)], text)
            for path, text in files.items()}


def write(name: str, directory: Path | None = None) -> Created:
    """Write the skeleton for buildpack id ``name`` into ``directory`` (default ``./<slug>``)."""
    names = Names.of(name)
    target = Path(directory) if directory is not None else Path.cwd() / names.slug
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"failed to create buildpack {name!r}: {target} exists and is not an "
                         "empty directory", hint="pass --dir with a new directory")
    files = render(names)
    for rel, content in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return Created(names, target.resolve(), tuple(sorted(files)))


def next_steps(created: Created) -> str:
    """What to run after ``buildpacks new``."""
    return (f"next:\n  cd {created.directory}\n  python -m pip install -e '.[test]'\n"
            f"  python -m pytest\n  hybridless-lifecycle buildpacks   "
            f"# lists {created.names.buildpack_id}")


_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "@DIST@"
version = "0.1.0"
description = "The @ID@ buildpack for hybridless-lifecycle."
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["hybridless-lifecycle>=@LIFECYCLE@"]

[project.optional-dependencies]
test = ["pytest>=8"]

# The lifecycle finds buildpacks through this entry-point group.
[project.entry-points."@GROUP@"]
"@EP@" = "@MODULE@"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

_README = """\
# @DIST@

The `@ID@` buildpack for
[hybridless-lifecycle](https://github.com/hybridless/hybridless-lifecycle).

It passes detection when the app has a `@MARKER@` file, puts a script in a launch layer and
declares the `@PROCESS@` process, which prints a greeting with the file's text. Replace that
with what your buildpack does; `docs/AUTHORING.md` of hybridless-lifecycle describes every
hook and type.

```console
python -m pip install -e '.[test]'
python -m pytest                       # the fixtures come from lifecycle.testing
hybridless-lifecycle buildpacks        # lists @ID@ and where it came from
hybridless-lifecycle build APP --image oci:./out:latest --run-image REF
```

To keep the buildpack out of a build without uninstalling it:
`HYBRIDLESS_BUILDPACKS_BLOCK=@ID@`.
"""

_GITIGNORE = """\
__pycache__/
*.egg-info/
build/
dist/
.pytest_cache/
"""

_MODULE = '''\
"""The @ID@ buildpack.

Written by `hybridless-lifecycle buildpacks new`: it detects a marker file, puts a script in a
launch layer and declares a process that runs it. Replace that with your buildpack's job.
"""

from __future__ import annotations

from lifecycle.hookspecs import (
    BUILDPACK_API,
    BuildContext,
    BuildResult,
    DetectContext,
    DetectResult,
    Prepend,
    Process,
    hookimpl,
)

__version__ = "0.1.0"

MARKER = "@MARKER@"
SCRIPT = """#!/bin/sh
echo "hello from @ID@: $(cat "${LAMBDA_TASK_ROOT:-/var/task}/@MARKER@")"
"""


class Buildpack:
    """Greets with the text of the app's marker file."""

    id = "@ID@"
    version = __version__
    api = BUILDPACK_API
    description = "Greets with the text of @MARKER@ (a skeleton to build on)."
    # True while build() reads only the app, the descriptor, the environment and `tools`:
    # an unchanged rebuild is then answered without running it. Set it to False once the
    # build asks the network or the clock.
    hermetic = True
    tools: tuple[str, ...] = ()

    def detect(self, ctx: DetectContext) -> DetectResult:
        """Pass when the app has the marker file."""
        if ctx.exists(MARKER):
            return DetectResult.passes(f"found {MARKER}")
        return DetectResult.fails(f"no {MARKER} in the app")

    def build(self, ctx: BuildContext) -> BuildResult:
        """Put the greeting script in a launch layer and declare the process."""
        tools = ctx.layer("tools", launch=True, metadata={"version": self.version})
        if not tools.reused:
            script = tools.path / "bin" / "@PROCESS@"
            script.parent.mkdir(parents=True, exist_ok=True)
            script.write_text(SCRIPT)
            script.chmod(0o755)
            ctx.log.info("wrote %s/bin/@PROCESS@", tools.image_path)
        return BuildResult(
            processes=(Process("@PROCESS@", (f"{tools.image_path}/bin/@PROCESS@",),
                               default=True),),
            launch_env={"PATH": Prepend(f"{tools.image_path}/bin")},
        )


@hookimpl
def hybridless_buildpacks() -> list[Buildpack]:
    """Register the buildpack (the entry point names this module)."""
    return [Buildpack()]
'''

_TEST = '''\
"""Tests with the fixtures lifecycle.testing provides (no conftest.py needed)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from lifecycle.testing import BuildRun, DetectRun, Kit

from @MODULE@ import MARKER, Buildpack


@pytest.fixture(autouse=True)
def _registered(register_buildpack: Callable[..., None]) -> None:
    register_buildpack(Buildpack())


def test_detect_needs_the_marker(make_app: Callable[..., Path],
                                 detect_app: Callable[..., DetectRun]) -> None:
    detect_app(make_app({})).assert_failed(reason=f"no {MARKER}")
    detect_app(make_app({MARKER: "world"})).assert_passed()


def test_build_makes_a_layer_and_a_process(make_app: Callable[..., Path],
                                           build_app: Callable[..., BuildRun],
                                           tmp_path: Path) -> None:
    app = make_app({MARKER: "world"})
    run = build_app(app).assert_passed()
    assert run.processes["@PROCESS@"].default
    assert run.files.read_text(f"/var/task/{MARKER}") == "world"
    script = tmp_path / "@PROCESS@"
    script.write_text(run.layer("@ID@/tools").read_text("bin/@PROCESS@"))
    greeting = subprocess.run(["/bin/sh", str(script)], env={"LAMBDA_TASK_ROOT": str(app)},
                              capture_output=True, text=True, check=True)
    assert greeting.stdout == "hello from @ID@: world\\n"


def test_unchanged_layer_is_reused(hybridless: Kit) -> None:
    app = hybridless.app({MARKER: "world"})
    hybridless.build(app).assert_passed()
    assert hybridless.build(app).assert_passed().reused == {"@ID@/tools"}


def test_entry_point_is_installed(hybridless: Kit) -> None:
    assert "@ID@" in hybridless.installed(), "install the package first: pip install -e ."
'''
