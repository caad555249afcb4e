"""Which Node.js the app asks for: descriptor runtime, else ``engines.node``, else ``.nvmrc``.

Only the major version matters to us: it selects the stack and it is what native modules are
compiled against. Ranges are understood in the forms people write in ``engines.node``
(``20``, ``20.x``, ``^20.1``, ``~18.4``, ``>=18``, ``>=18 <21``, ``18 || 20``, ``*``);
anything else is recorded as written and treated as "any".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.descriptor import Function

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
    if nvmrc.is_file():
        text = nvmrc.read_text(encoding="utf-8", errors="replace").strip()
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
