"""Which Node.js the app asks for: descriptor runtime, else ``engines.node``, else ``.nvmrc``.

Two readings of one request. :func:`satisfies` judges a major version, which is what selects
a stack and what native modules are compiled against; it understands the forms people write in
``engines.node`` (``20``, ``20.x``, ``^20.1``, ``~18.4``, ``>=18``, ``>=18 <21``,
``18 || 20``, ``*``) and treats anything else as "any", never refusing a build.
:meth:`NodeVersion.to_range` is the exact semver range the ``node`` layer is resolved with,
and refuses what npm would not accept, since a version must then be chosen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildpacks.nodejs.semver import Range, RangeError, Version
from lifecycle import safeio
from lifecycle.descriptor import Function
from lifecycle.errors import BuildpackFailed

DEFAULT_MAJOR = 22
"""The major installed when nothing is requested: the newest LTS line when this was written.

The npm registry, the only source the buildpack reads, does not say which releases are LTS,
so the default is a constant raised with each new LTS line (every October).
"""
# .nvmrc names LTS lines by codename; these are fixed once a line enters LTS.
LTS_CODENAMES = {"argon": 4, "boron": 6, "carbon": 8, "dubnium": 10, "erbium": 12,
                 "fermium": 14, "gallium": 16, "hydrogen": 18, "iron": 20, "jod": 22,
                 "krypton": 24}
# nvm's aliases for "the newest release"; the newest published version matches them.
NEWEST_ALIASES = frozenset({"node", "latest", "current", "stable"})

_COMPARATOR = re.compile(r"^(?P<op>>=|<=|>|<|=|\^|~)?\s*v?(?P<major>\d+|[xX*])(?:\.[\dxX*]+)*$")


@dataclass(frozen=True)
class NodeVersion:
    """The Node.js version an app requests and where that request came from."""

    requested: str
    source: str

    @property
    def major(self) -> int | None:
        """The lowest major version the request allows, when one can be named."""
        majors = [m for m in range(0, 100) if satisfies(self.requested, m)]
        if not majors or len(majors) == 100:
            return None
        return majors[0]

    def to_range(self) -> Range:
        """The semver range resolved against the registry's releases.

        ``*`` and ``lts/*`` mean the default major (the registry cannot say what is LTS);
        ``lts/<codename>`` means that line; nvm's ``node`` means the newest release.
        """
        spec = self.requested.strip()
        lowered = spec.lower()
        if lowered in ("", "*", "x", "lts/*", "lts"):
            spec = f"{DEFAULT_MAJOR}.x"
        elif lowered.startswith("lts/"):
            major = LTS_CODENAMES.get(lowered.removeprefix("lts/"))
            if major is None:
                raise BuildpackFailed(
                    f"failed to resolve Node.js {self.requested!r} ({self.source}): unknown "
                    f"LTS codename; known: {', '.join(sorted(LTS_CODENAMES))}",
                    hint="name a version or range instead, e.g. 22 or ^22.11.0")
            spec = f"{major}.x"
        elif lowered in NEWEST_ALIASES:
            spec = "*"
        elif spec.startswith("nodejs"):
            spec = spec.removeprefix("nodejs")
        try:
            return Range.parse(spec)
        except RangeError as exc:
            raise BuildpackFailed(
                f"failed to resolve Node.js {self.requested!r} ({self.source}): {exc}",
                hint="write a semver range npm accepts, e.g. 22, 22.x, ^22.11.0 or >=20 <23"
            ) from exc

    def to_json(self) -> dict[str, Any]:
        """Plain data for the plan and the image label."""
        return {"requested": self.requested, "source": self.source, "major": self.major}


def requested_version(functions: Iterable[Function], package: Mapping[str, Any],
                      app_dir: Path) -> NodeVersion:
    """The first of: a ``nodejsNN`` runtime of a function, ``engines.node``, ``.nvmrc``."""
    for fn in functions:
        if fn.runtime and fn.runtime.startswith("nodejs"):
            return NodeVersion(fn.runtime.removeprefix("nodejs"), f"runtime of function "
                                                                  f"'{fn.name}'")
    engines = package.get("engines")
    if isinstance(engines, Mapping) and isinstance(engines.get("node"), str):
        return NodeVersion(engines["node"].strip(), "package.json engines.node")
    nvmrc = app_dir / ".nvmrc"
    if safeio.is_regular(nvmrc, root=app_dir):
        text = safeio.read_text(nvmrc, root=app_dir, limit=4096, errors="replace").strip()
        if text:
            return NodeVersion(text.splitlines()[0].strip(), ".nvmrc")
    return NodeVersion("*", "default")


def satisfies(spec: str, major: int) -> bool:
    """Whether Node major version ``major`` meets ``spec`` (judged on majors only)."""
    spec = spec.strip()
    if spec.lower() in ("", "*", "x", "latest", "node", "current", "lts/*") or spec.startswith(
            "lts/"):
        return True
    return any(_all_hold(part.split(), major) for part in spec.split("||"))


def _all_hold(comparators: list[str], major: int) -> bool:
    # "18 - 20" is a hyphen range; npm allows it in engines.
    if len(comparators) == 3 and comparators[1] == "-":
        return _holds(f">={comparators[0]}", major) and _holds(f"<={comparators[2]}", major)
    joined: list[str] = []
    for token in comparators:
        # ">= 18" is written with a space as often as without.
        if joined and joined[-1] in (">=", "<=", ">", "<", "=", "^", "~"):
            joined[-1] += token
        else:
            joined.append(token)
    return all(_holds(c, major) for c in joined) if joined else True


def _holds(comparator: str, major: int) -> bool:
    match = _COMPARATOR.match(comparator)
    if not match:
        return True  # an unusual form is recorded, never used to refuse a build
    op = match["op"] or "="
    if not match["major"].isdigit():
        return True
    want = int(match["major"])
    minor_given = "." in comparator and not re.search(r"\.0(?:\.0)?$", comparator)
    if op in ("=", "^", "~"):
        return major == want
    if op == ">=":
        return major >= want
    if op == ">":
        return major > want or (major == want and minor_given)
    if op == "<":
        return major < want or (major == want and minor_given)
    return major <= want


def host_major(version_output: str) -> int | None:
    """``v20.11.1`` → 20."""
    match = re.match(r"\s*v?(\d+)\.", version_output)
    return int(match.group(1)) if match else None


# The npm major each Node.js release line ships with, from the Node.js release notes (the
# "npm" column of nodejs.org's previous-releases table). Neither the node-linux-* packages nor
# anything else on the npm registry records it, so it is kept here: (first release, npm major),
# newest first. A release newer than the table's newest line gets the newest npm major listed.
BUNDLED_NPM: tuple[tuple[Version, int], ...] = (
    ((24, 0, 0), 11),
    ((20, 10, 0), 10),   # 20.10.0 moved to npm 10; 21, 22 and 23 ship npm 10 too
    ((20, 0, 0), 9),
    ((19, 0, 0), 8),
    ((18, 19, 0), 10),   # 18.19.0 moved to npm 10
    ((18, 16, 0), 9),    # 18.16.0 moved to npm 9
    ((16, 11, 0), 8),
    ((15, 0, 0), 7),
    ((0, 0, 0), 6),
)


def bundled_npm_major(node: Version) -> int:
    """The npm major that Node.js release ``node`` bundles (see :data:`BUNDLED_NPM`)."""
    lines = sorted(BUNDLED_NPM, reverse=True)
    # Lines sort by their first release; a later major's old line (18.19 after 20.0) must not
    # capture 20.x, so compare within the same major first.
    for first, npm_major in lines:
        if first[0] == node[0] and node >= first:
            return npm_major
    for first, npm_major in lines:
        if node >= first:
            return npm_major
    return lines[-1][1]
