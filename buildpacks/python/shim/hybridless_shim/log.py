"""The shim's own log lines, on stderr, where the platform collects the container's log."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    """Write one line on stderr and flush it, so that it is not lost if the process dies next."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
