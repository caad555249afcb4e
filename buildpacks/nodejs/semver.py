"""Semver ranges as npm writes them, judged on exact release versions (no pre-releases).

Enough of node-semver's grammar for ``engines.node`` and ``.nvmrc``: comparators
(``<``, ``<=``, ``>``, ``>=``, ``=``), partial versions and x-ranges (``20``, ``20.x``,
``20.1.*``), caret and tilde ranges, hyphen ranges (``18 - 20``), intersections separated by
spaces and unions by ``||``. Pre-release versions are never chosen: the runtime is a release.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

Version = tuple[int, int, int]

_RELEASE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_PARTIAL = re.compile(r"^(?P<op><=|>=|<|>|=|\^|~>?)?\s*v?(?P<parts>[\dxX*]+(?:\.[\dxX*]+){0,2})"
                      r"(?P<pre>-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_OPERATORS = ("<=", ">=", "<", ">", "=", "^", "~", "~>")
_TOP = (1 << 31, 0, 0)


class RangeError(ValueError):
    """A range npm's grammar does not describe."""


def parse_release(text: str) -> Version | None:
    """``20.11.1`` (or ``v20.11.1``) as a tuple; None for anything else, pre-releases included."""
    match = _RELEASE.match(text.strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def format_version(version: Version) -> str:
    """``(20, 11, 1)`` → ``20.11.1``."""
    return ".".join(str(part) for part in version)


@dataclass(frozen=True)
class Bound:
    """One side of an interval: a version and whether the version itself is inside."""

    version: Version
    inclusive: bool


@dataclass(frozen=True)
class Interval:
    """The versions between two bounds (None: unbounded on that side)."""

    low: Bound | None = None
    high: Bound | None = None

    def contains(self, version: Version) -> bool:
        """Whether ``version`` lies inside."""
        if self.low is not None and (version < self.low.version or (
                version == self.low.version and not self.low.inclusive)):
            return False
        return self.high is None or version < self.high.version or (
            version == self.high.version and self.high.inclusive)

    def meet(self, other: Interval) -> Interval:
        """The intersection of two intervals."""
        low = max((b for b in (self.low, other.low) if b is not None),
                  key=lambda b: (b.version, not b.inclusive), default=None)
        high = min((b for b in (self.high, other.high) if b is not None),
                   key=lambda b: (b.version, b.inclusive), default=None)
        return Interval(low, high)


@dataclass(frozen=True)
class Range:
    """A parsed range: a union of intervals."""

    text: str
    intervals: tuple[Interval, ...]

    @classmethod
    def parse(cls, text: str) -> Range:
        """Parse npm's range grammar; raise RangeError naming the part that is not understood."""
        alternatives = [part.strip() for part in text.split("||")]
        return cls(text, tuple(_parse_set(part) for part in alternatives))

    def contains(self, version: Version) -> bool:
        """Whether ``version`` satisfies the range."""
        return any(interval.contains(version) for interval in self.intervals)

    def newest(self, versions: Iterable[Version]) -> Version | None:
        """The highest of ``versions`` inside the range, or None."""
        return max((v for v in versions if self.contains(v)), default=None)


def _parse_set(text: str) -> Interval:
    if text in ("", "*", "x", "X"):
        return Interval()
    tokens = text.split()
    if len(tokens) == 3 and tokens[1] == "-":
        low = _partial(tokens[0])
        high = _partial(tokens[2])
        return Interval(Bound(_floor(low), True), _upper_of(high))
    joined: list[str] = []
    for token in tokens:
        # ">= 18" is written with a space as often as without.
        if joined and joined[-1] in _OPERATORS:
            joined[-1] += token
        else:
            joined.append(token)
    result = Interval()
    for comparator in joined:
        result = result.meet(_comparator(comparator))
    return result


def _partial(text: str) -> list[int | None]:
    match = _PARTIAL.match(text)
    if not match or match["op"]:
        raise RangeError(f"not a version: {text!r}")
    return _parts(match["parts"])


def _parts(text: str) -> list[int | None]:
    parts: list[int | None] = [None if p in ("x", "X", "*") else int(p) for p in text.split(".")]
    # "20.x.3" means 20.x: whatever follows a wildcard is a wildcard too.
    for index, part in enumerate(parts):
        if part is None:
            return parts[:index] + [None] * (3 - index)
    return parts + [None] * (3 - len(parts))


def _floor(parts: list[int | None]) -> Version:
    return (parts[0] or 0, parts[1] or 0, parts[2] or 0)


def _upper_of(parts: list[int | None]) -> Bound | None:
    """The high bound of a partial version used as "up to and including" it."""
    major, minor, patch = parts
    if major is None:
        return None
    if minor is None:
        return Bound((major + 1, 0, 0), False)
    if patch is None:
        return Bound((major, minor + 1, 0), False)
    return Bound((major, minor, patch), True)


def _pre_release(op: str, release: Version) -> Interval:
    """A comparator on ``X.Y.Z-tag``, which sorts just below release ``X.Y.Z``."""
    nothing = Interval(Bound(_TOP, False), Bound((0, 0, 0), False))
    if op == "=":
        return nothing  # only that pre-release, which is never installed
    if op in (">", ">="):
        return Interval(Bound(release, True))
    if op in ("<", "<="):
        return Interval(high=Bound(release, False))
    top = (release[0] + 1, 0, 0) if op == "^" and release[0] > 0 else (
        release[0], release[1] + 1, 0)
    return Interval(Bound(release, True), Bound(top, False))


def _comparator(text: str) -> Interval:
    match = _PARTIAL.match(text)
    if not match:
        raise RangeError(f"not a version range: {text!r}")
    op = match["op"] or "="
    parts = _parts(match["parts"])
    major, minor, patch = parts
    floor = _floor(parts)
    if match["pre"] and None not in parts:
        return _pre_release(op, floor)
    if major is None:
        # "*", ">=*": anything; "<*", ">*": nothing, as in node-semver.
        return Interval() if op in ("=", ">=", "<=", "^", "~", "~>") else Interval(
            Bound(_TOP, False), Bound((0, 0, 0), False))
    if op == "=":
        return Interval(Bound(floor, True), _upper_of(parts))
    if op == ">=":
        return Interval(Bound(floor, True))
    if op == "<":
        return Interval(high=Bound(floor, False))
    if op == ">":
        upper = _upper_of(parts)
        assert upper is not None
        return Interval(Bound(upper.version, not upper.inclusive))
    if op == "<=":
        return Interval(high=_upper_of(parts))
    if op in ("~", "~>"):
        top = (major + 1, 0, 0) if minor is None else (major, minor + 1, 0)
        return Interval(Bound(floor, True), Bound(top, False))
    # Caret: the left-most non-zero part is fixed.
    if major > 0 or minor is None:
        top = (major + 1, 0, 0)
    elif minor > 0 or patch is None:
        top = (0, minor + 1, 0)
    else:
        top = (0, 0, patch + 1)
    return Interval(Bound(floor, True), Bound(top, False))
