"""What a Python app looks like on disk: its dependency manifest, lockfile and handlers.

Read-only: detect calls it, so nothing here runs a command or writes a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle import safeio
from lifecycle.descriptor import Descriptor, Function
from lifecycle.errors import BuildpackFailed

# docs/reference.md §3: where a descriptor-less app's handler is looked for, in this order.
INFERRED_HANDLER_FILES = ("handler.py", "app.py", "main.py")
INFERRED_FUNC = "handler"
_DEFINES_HANDLER = re.compile(r"^(?:async\s+def\s+handler\b|def\s+handler\b|handler\s*[:=])",
                              re.MULTILINE)
# pip's own option lines that pull in another file whose contents change what is installed.
_INCLUDE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)(?:\s+|=)(\S+)")


@dataclass(frozen=True)
class Manifest:
    """Where the dependencies come from.

    ``kind`` is ``uv`` or ``poetry`` (a lockfile installed through that tool),
    ``requirements`` (``requirements.txt``), ``pyproject`` (PEP 621 ``dependencies``) or
    ``none``. ``files`` are the app-relative files whose bytes decide what gets installed.
    """

    kind: str
    files: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()

    @property
    def installs_anything(self) -> bool:
        """Whether a dependency layer is needed at all."""
        return self.kind != "none"


@dataclass(frozen=True)
class PythonProject:
    """The parts of an app directory the buildpack decides by."""

    app_dir: Path
    pyproject: Mapping[str, Any]
    has_requirements: bool
    has_pyproject: bool

    @classmethod
    def read(cls, app_dir: Path) -> PythonProject:
        """Read ``pyproject.toml`` (if any) and note ``requirements.txt``."""
        pyproject_path = app_dir / "pyproject.toml"
        data = parse_pyproject(pyproject_path) if pyproject_path.is_file() else {}
        return cls(app_dir, data, (app_dir / "requirements.txt").is_file(),
                   pyproject_path.is_file())

    @property
    def requires_python(self) -> str | None:
        """PEP 621 ``requires-python``, when given as a string."""
        value = self.pyproject.get("project", {}).get("requires-python")
        return value if isinstance(value, str) else None

    @property
    def pep621_dependencies(self) -> tuple[str, ...]:
        """PEP 621 ``[project] dependencies``."""
        project = self.pyproject.get("project", {})
        deps = project.get("dependencies", []) if isinstance(project, Mapping) else []
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise BuildpackFailed("failed to read pyproject.toml: [project] dependencies is "
                                  "not a list of strings")
        return tuple(deps)

    def manifest(self) -> Manifest:
        """Pick the dependency source: a lockfile, then requirements.txt, then pyproject."""
        if self.has_pyproject and (self.app_dir / "uv.lock").is_file():
            return Manifest("uv", ("pyproject.toml", "uv.lock"))
        if self.has_pyproject and (self.app_dir / "poetry.lock").is_file():
            return Manifest("poetry", ("pyproject.toml", "poetry.lock"))
        if self.has_requirements:
            files = requirement_files(self.app_dir, "requirements.txt")
            has_lines = any(_requirement_lines(self.app_dir / name) for name in files)
            return Manifest("requirements", tuple(files)) if has_lines else Manifest("none")
        deps = self.pep621_dependencies
        if deps:
            return Manifest("pyproject", ("pyproject.toml",), deps)
        return Manifest("none")


def parse_pyproject(path: Path) -> Mapping[str, Any]:
    """``pyproject.toml`` as a mapping; a broken one fails the build with the parser's words."""
    import tomli

    try:
        return tomli.loads(safeio.read_text(path, root=path.parent))
    except (OSError, UnicodeDecodeError, tomli.TOMLDecodeError) as exc:
        raise BuildpackFailed(f"failed to read {path.name}: {exc}",
                              hint="fix pyproject.toml so that pip accepts it") from exc


def requirement_files(app_dir: Path, first: str) -> list[str]:
    """``first`` and every file it includes with ``-r``/``-c``, app-relative, in visit order."""
    found: list[str] = []
    pending = [first]
    while pending:
        name = pending.pop(0)
        if name in found:
            continue
        path = app_dir / name
        if not safeio.is_regular(path, root=app_dir):
            raise BuildpackFailed(f"failed to read requirements: {name} is missing, outside "
                                  "the app or not a regular file",
                                  hint="a -r/-c line names a file that is not in the app")
        found.append(name)
        base = Path(name).parent
        for line in safeio.read_text(path, root=app_dir, errors="replace").splitlines():
            match = _INCLUDE.match(line)
            if match:
                pending.append((base / match[1]).as_posix())
    return found


def _requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip()
             for line in safeio.read_text(path, errors="replace").splitlines())
    return [line for line in lines if line]


def handler_file(app_dir: Path, entrypoint: str) -> Path | None:
    """The module a handler path names: ``<path>.py`` or the package ``<path>/__init__.py``."""
    base = app_dir / entrypoint.removesuffix(".py")
    for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def is_python_function(fn: Function, app_dir: Path) -> bool:
    """A function this buildpack runs: a ``python*`` runtime, or no runtime and a ``.py``
    handler."""
    if fn.handler is None or fn.command is not None:
        return False
    if fn.runtime:
        return fn.runtime.startswith("python")
    return handler_file(app_dir, fn.entrypoint) is not None


def python_functions(functions: Iterable[Function], app_dir: Path) -> tuple[Function, ...]:
    """The functions of ``functions`` that this buildpack builds."""
    return tuple(fn for fn in functions if is_python_function(fn, app_dir))


def foreign_functions(descriptor: Descriptor, app_dir: Path) -> tuple[Function, ...]:
    """Descriptor functions with a handler that is not Python (left to another buildpack)."""
    return tuple(fn for fn in descriptor.functions
                 if fn.handler is not None and fn.command is None
                 and not is_python_function(fn, app_dir))


def infer_function(app_dir: Path) -> Function | None:
    """An ``httpd`` function ``main`` for the first candidate defining ``handler``.

    When no candidate visibly defines it (it may be imported), the first existing one is used
    (docs/reference.md §3).
    """
    existing = [name for name in INFERRED_HANDLER_FILES
                if safeio.is_regular(app_dir / name, root=app_dir)]
    for name in existing:
        if _DEFINES_HANDLER.search(safeio.read_text(app_dir / name, root=app_dir,
                                                    errors="replace")):
            return _inferred(name)
    return _inferred(existing[0]) if existing else None


def _inferred(file_name: str) -> Function:
    return Function(name="main", handler=f"{file_name.removesuffix('.py')}.{INFERRED_FUNC}",
                    event="httpd")
