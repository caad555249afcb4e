"""Where the lifecycle keeps its files by default (docs/reference.md §2).

Kept apart from :mod:`lifecycle.cache.layers` and :mod:`lifecycle.image.transports.store` so
that the build receipt check, which runs before anything heavy is imported, can find both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


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
