"""Which Python the app asks for: descriptor runtime, else ``.python-version``, else
``requires-python``, else the default stack's.

Only ``major.minor`` matters: it picks the stack, names the interpreter that installs the
dependencies, and is the ABI that compiled wheels and bytecode are made for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle import safeio
from lifecycle.descriptor import Function
from lifecycle.errors import BuildpackFailed

SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
"""The Python versions a descriptor runtime may name (docs/reference.md §3)."""

DEFAULT = "3.11"
"""Debian bookworm's Python, the default run image's."""

_VERSION = re.compile(r"^\s*(?:python|cpython-?)?(\d+)\.(\d+)(?:\.[0-9a-z*]+)*\s*$", re.IGNORECASE)
_CLAUSE = re.compile(r"^\s*(~=|==|!=|<=|>=|<|>|===)\s*([0-9][0-9a-z.*+!-]*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class PythonVersion:
    """The selected ``major.minor`` and where the choice came from, for logs and labels."""

    version: str
    source: str

    def to_json(self) -> dict[str, Any]:
        """Plain data for the plan and the image label."""
        return {"version": self.version, "source": self.source}


def select(functions: Iterable[Function], app_dir: Path, requires_python: str | None
           ) -> PythonVersion:
    """Pick the version in the documented order; an unsupported request fails the build."""
    runtimes: dict[str, str] = {}
    for fn in functions:
        if fn.runtime and fn.runtime.startswith("python"):
            runtimes.setdefault(fn.runtime, fn.name)
    if len(runtimes) > 1:
        listed = ", ".join(f"{name} ({runtime})" for runtime, name in sorted(runtimes.items()))
        raise BuildpackFailed(f"failed to select Python: functions ask for different versions: "
                              f"{listed}", hint="one image has one Python; give every function "
                                                "the same runtime")
    if runtimes:
        runtime, name = next(iter(runtimes.items()))
        return PythonVersion(_supported(runtime.removeprefix("python"),
                                        f"runtime of function '{name}'"),
                             f"runtime of function '{name}'")
    pinned = app_dir / ".python-version"
    if safeio.is_regular(pinned, root=app_dir):
        lines = [line.strip() for line in safeio.read_text(pinned, root=app_dir, limit=4096,
                                                           errors="replace").splitlines()]
        wanted = next((line for line in lines if line and not line.startswith("#")), "")
        if wanted:
            return PythonVersion(_supported(wanted, ".python-version"), ".python-version")
    if requires_python:
        return PythonVersion(from_specifier(requires_python),
                             f"requires-python {requires_python.strip()!r}")
    return PythonVersion(DEFAULT, "default")


def _supported(text: str, source: str) -> str:
    match = _VERSION.match(text)
    version = f"{match[1]}.{match[2]}" if match else text.strip()
    if version not in SUPPORTED:
        raise BuildpackFailed(f"failed to select Python: {source} asks for {text.strip()!r}, "
                              f"which is not supported", hint=f"use one of {', '.join(SUPPORTED)}")
    return version


def from_specifier(spec: str) -> str:
    """The default version when ``spec`` allows it, else the allowed version nearest to it."""
    allowed = [v for v in SUPPORTED if satisfies(spec, v)]
    if not allowed:
        raise BuildpackFailed(f"failed to select Python: requires-python {spec.strip()!r} "
                              f"allows none of {', '.join(SUPPORTED)}",
                              hint="widen requires-python in pyproject.toml, or pin a version "
                                   "with .python-version")
    # Nearest, preferring newer on a tie: the smallest step away from the tested default.
    rank = SUPPORTED.index(DEFAULT)
    return min(allowed, key=lambda v: (abs(SUPPORTED.index(v) - rank), -SUPPORTED.index(v)))


def satisfies(spec: str, version: str) -> bool:
    """Whether a ``major.minor`` release line meets a PEP 440 specifier such as ``>=3.10,<4``.

    A release line stands for all its patch releases: it satisfies a clause when some patch
    release would (``==3.11.4`` and ``<3.11.2`` both accept 3.11). Clauses we cannot read are
    ignored rather than used to refuse a build.
    """
    line = _parts(version)[:2]
    for clause in (c for c in spec.split(",") if c.strip()):
        match = _CLAUSE.match(clause)
        if not match:
            continue
        op, raw = match[1], match[2]
        if not _clause_holds(op, raw, line):
            return False
    return True


def _clause_holds(op: str, raw: str, line: tuple[int, ...]) -> bool:
    wildcard = raw.endswith(".*")
    bound = _parts(raw.removesuffix(".*"))
    head = bound[:2] if len(bound) >= 2 else (*bound, 0)
    patch_given = len(bound) > 2 and any(bound[2:])
    if op in ("==", "==="):
        return line[0] == bound[0] if wildcard and len(bound) == 1 else line == head
    if op == "!=":
        # Only a whole release line can be excluded by one clause.
        return not (line == head and (wildcard or not patch_given) and len(bound) >= 2)
    if op in (">=", ">"):
        # A later patch release always exists, so ">3.11" still admits the 3.11 line.
        return line >= head
    if op == "<=":
        return line <= head
    if op == "<":
        return line < head or (line == head and patch_given)
    # ~=X.Y means >=X.Y,==X.*; ~=X.Y.Z means >=X.Y.Z,==X.Y.*
    if len(bound) >= 3:
        return line == head
    return line >= head and line[0] == head[0]


def _parts(text: str) -> tuple[int, ...]:
    numbers = []
    for piece in text.split("."):
        digits = re.match(r"\d+", piece)
        if not digits:
            break
        numbers.append(int(digits.group()))
    return tuple(numbers) or (0,)
