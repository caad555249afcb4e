"""Per-blob progress on a terminal: bytes and rate for each layer in flight.

Quiet (:class:`Silent`) unless stderr is a terminal and neither ``-q`` nor ``--json`` was
given; what is said on a terminal is redrawn in place, at most a few times a second.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO

_REDRAW = 0.2


class Progress:
    """What the client reports while moving blobs; the base class reports nothing."""

    def start(self, digest: str, size: int, verb: str) -> None:
        """A blob of ``size`` bytes starts moving (``verb``: pulling, pushing)."""

    def advance(self, digest: str, count: int) -> None:
        """``count`` more bytes of ``digest`` moved."""

    def finish(self, digest: str, outcome: str) -> None:
        """The blob is done (``outcome``: pulled, pushed, exists, mounted)."""

    def close(self) -> None:
        """Leave the terminal clean."""


class Silent(Progress):
    """No output: for ``-q``, ``--json`` and output that is not a terminal."""


@dataclass
class _Line:
    verb: str
    size: int
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    outcome: str = ""


class TerminalProgress(Progress):
    """One line per blob, rewritten in place with ANSI cursor moves."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lines: dict[str, _Line] = {}
        self._drawn = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def start(self, digest: str, size: int, verb: str) -> None:
        with self._lock:
            self._lines[digest] = _Line(verb, size)
            self._draw(force=True)

    def advance(self, digest: str, count: int) -> None:
        with self._lock:
            line = self._lines.get(digest)
            if line is not None:
                line.done += count
                self._draw(force=False)

    def finish(self, digest: str, outcome: str) -> None:
        with self._lock:
            line = self._lines.get(digest)
            if line is not None:
                line.outcome = outcome
                self._draw(force=True)

    def close(self) -> None:
        with self._lock:
            self._draw(force=True)
            self._lines.clear()
            self._drawn = 0

    def _draw(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last < _REDRAW:
            return
        self._last = now
        out = [f"\x1b[{self._drawn}F"] if self._drawn else []
        for digest, line in self._lines.items():
            out.append(f"\x1b[2K{_render(digest, line, now)}\n")
        self.stream.write("".join(out))
        self.stream.flush()
        self._drawn = len(self._lines)


def _render(digest: str, line: _Line, now: float) -> str:
    short = digest.partition(":")[2][:12]
    if line.outcome:
        return f"{short}: {line.outcome} ({_size(line.size)})"
    rate = line.done / max(now - line.started, 1e-3)
    return f"{short}: {line.verb} {_size(line.done)} / {_size(line.size)} at {_size(rate)}/s"


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def for_terminal(*, quiet: bool, stream: TextIO | None = None) -> Progress:
    """Terminal progress when ``stream`` (stderr) is a TTY and output is not quiet."""
    stream = stream or sys.stderr
    if quiet or not stream.isatty():
        return Silent()
    return TerminalProgress(stream)
