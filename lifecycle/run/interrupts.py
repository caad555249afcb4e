"""Ctrl-C while a container is ours: a flag the followers poll, never an exception mid-call.

A ``KeyboardInterrupt`` raised wherever the main thread happens to be (inside the docker
SDK's socket reads, between creating a container and keeping its handle, inside ``stop``)
can leave a container behind or a call half done. While :class:`Interrupts` is entered,
SIGINT and SIGTERM only record themselves; the code that follows a container checks
:attr:`Interrupts.signal` at every step and waits in short slices, so a signal is acted on
within a fraction of a second wherever it arrives. A second Ctrl-C asks for haste: the
container is killed instead of being given its grace period.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_SLICE_SECONDS = 0.1


class Interrupts:
    """Records SIGINT/SIGTERM while entered (main thread only; elsewhere it records nothing)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.count = 0
        self._previous: dict[int, Any] = {}
        self._depth = 0

    def __enter__(self) -> Interrupts:
        # Re-entrant: a caller may enter before handing the same object to run or invoke.
        self._depth += 1
        if self._depth == 1 and threading.current_thread() is threading.main_thread():
            for number in _SIGNALS:
                self._previous[number] = signal.signal(number, self._record)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._depth -= 1
        if self._depth:
            return
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous.clear()

    def _record(self, number: int, _frame: FrameType | None) -> None:
        self.signal = self.signal or number
        self.count += 1

    @property
    def fired(self) -> bool:
        """Whether a signal arrived."""
        return self.signal is not None

    @property
    def exit_code(self) -> int:
        """128 + the first signal's number: 130 for Ctrl-C, as shells report it."""
        return 128 + (self.signal or signal.SIGINT)

    def wait(self, done: Callable[[], bool], *, timeout: float | None = None,
             signals: int = 1) -> bool:
        """Wait until ``done()``, the ``signals``-th signal or ``timeout``; return ``done()``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done():
            if self.count >= signals or (deadline is not None and time.monotonic() >= deadline):
                return done()
            # Short slices: the main thread runs Python (and so sees the flag) often.
            time.sleep(_SLICE_SECONDS)
        return True
