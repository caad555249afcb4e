"""A Lambda-simulating runtime for Python handlers; standard library only (Python 3.10 to 3.13)."""

from __future__ import annotations

__version__ = "0.1.0"
