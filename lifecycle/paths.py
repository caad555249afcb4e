"""Where the lifecycle keeps its files by default (docs/reference.md §2).

Kept apart from :mod:`lifecycle.cache.layers` and :mod:`lifecycle.image.transports.store` so
that the build receipt check, which runs before anything heavy is imported, can find both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/hybridless``, else ``~/.cache/hybridless``."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hybridless"


def store_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$HYBRIDLESS_HOME``, else ``$XDG_DATA_HOME/hybridless``, else under ``~/.local/share``."""
    env = os.environ if environ is None else environ
    if env.get("HYBRIDLESS_HOME"):
        return Path(env["HYBRIDLESS_HOME"])
    if env.get("XDG_DATA_HOME"):
        return Path(env["XDG_DATA_HOME"]) / "hybridless"
    return Path.home() / ".local" / "share" / "hybridless"


# NamedTuple, not a frozen dataclass: the receipt check imports this module, and importing
# dataclasses (with inspect, ast and dis) would cost it about 25 ms.
class CacheLayout(NamedTuple):
    """Where each part of the build cache lives under its root (``--cache-dir`` or
    :func:`cache_root`); the layout's one home (see :mod:`lifecycle.cache.layers`)."""

    root: Path

    @property
    def blobs(self) -> Path:
        """Layer blobs, shared by every project."""
        return self.root / "blobs"

    @property
    def descriptors(self) -> Path:
        """Markers of descriptors that passed the schema."""
        return self.root / "descriptors"

    @property
    def receipts(self) -> Path:
        """Build receipts, one per request (see :mod:`lifecycle.cache.receipt`)."""
        return self.root / "receipts"

    @property
    def entry_points(self) -> Path:
        """The remembered ``hybridless.buildpacks`` entry points (see :mod:`lifecycle.plugins`)."""
        return self.root / "entry-points.json"

    def project(self, key: str) -> Path:
        """One project's directory: its lock, layers and records."""
        return self.root / "projects" / key
