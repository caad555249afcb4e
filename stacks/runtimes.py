"""Runtime names and the range syntax stacks use to say which runtimes they serve.

A runtime is a family and a dotted version: ``nodejs20``, ``python3.12`` (a trailing ``.x``,
as Lambda spells ``nodejs20.x``, is dropped). A stack's ``runtimes`` entry is one runtime or a
range ``FAMILY FIRST-LAST`` where ``LAST`` replaces the last number of ``FIRST``:

- ``nodejs18-24`` serves nodejs18, nodejs19, ... nodejs24;
- ``python3.10-13`` serves python3.10 ... python3.13 (never python4);
- ``python3.11`` serves exactly python3.11.

A request matches on the numbers the entry gives: ``nodejs22`` entries serve a request for
``nodejs22.4``, and a request that stops short (``python3``) matches any entry of its prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_RUNTIME = re.compile(r"^(?P<family>[a-z]+)(?P<version>\d+(?:\.\d+)*)(?:\.x)?$")
_RANGE = re.compile(r"^(?P<family>[a-z]+)(?P<version>\d+(?:\.\d+)*)(?:-(?P<last>\d+))?$")


@dataclass(frozen=True)
class Runtime:
    """A requested runtime: ``family`` and version numbers (``python3.12`` → python, (3, 12))."""

    family: str
    version: tuple[int, ...]

    def __str__(self) -> str:
        return self.family + ".".join(str(n) for n in self.version)


@dataclass(frozen=True)
class RuntimeRange:
    """What one ``runtimes`` entry serves: ``family``, fixed ``prefix``, last number in a span."""

    family: str
    prefix: tuple[int, ...]
    first: int
    last: int

    def serves(self, runtime: Runtime) -> bool:
        """Whether a request for ``runtime`` can be built on a stack with this entry."""
        if runtime.family != self.family:
            return False
        wanted = (*self.prefix, self.first)
        given = runtime.version[: len(wanted)]
        if given[: len(self.prefix)] != self.prefix[: len(given)]:
            return False
        if len(given) <= len(self.prefix):
            return True  # the request stops before the number the range spans
        return self.first <= given[len(self.prefix)] <= self.last

    def __str__(self) -> str:
        head = self.family + ".".join(str(n) for n in (*self.prefix, self.first))
        return head if self.first == self.last else f"{head}-{self.last}"


def parse_runtime(text: str) -> Runtime:
    """Parse a requested runtime such as ``nodejs20``, ``nodejs20.x`` or ``python3.12``."""
    match = _RUNTIME.match(text.strip().lower())
    if match is None:
        raise ValueError(
            f"{text!r} is not a runtime: expected a family and a version, e.g. nodejs22 or "
            "python3.12"
        )
    return Runtime(match["family"], tuple(int(n) for n in match["version"].split(".")))


def parse_range(text: str) -> RuntimeRange:
    """Parse one ``runtimes`` entry: ``nodejs18-24``, ``python3.10-13`` or ``python3.11``."""
    match = _RANGE.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a runtime or range: expected e.g. nodejs22, nodejs18-24, "
            "python3.11 or python3.10-13"
        )
    numbers = tuple(int(n) for n in match["version"].split("."))
    first = numbers[-1]
    last = int(match["last"]) if match["last"] is not None else first
    if last < first:
        raise ValueError(f"{text!r} is an empty range: {last} is below {first}")
    return RuntimeRange(match["family"], numbers[:-1], first, last)
