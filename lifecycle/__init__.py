"""hybridless-lifecycle: builds Lambda-faithful images from source, without a daemon."""

from __future__ import annotations

__version__ = "0.1.0"
