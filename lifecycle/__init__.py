"""hybridless-lifecycle: a buildpack lifecycle that builds Lambda-faithful images without a daemon."""

from __future__ import annotations

__version__ = "0.1.0"
