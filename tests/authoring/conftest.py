"""The authoring tests use the fixtures of ``lifecycle.testing``.

Once hybridless-lifecycle is installed, its ``pytest11`` entry point provides them; importing
them here as well keeps these tests working in a checkout whose install predates the entry
point (fixtures defined in a conftest take precedence, so nothing is registered twice).
"""

from __future__ import annotations

import pytest

from lifecycle.testing import (
    build_app,
    detect_app,
    hybridless,
    hybridless_run_image,
    make_app,
    register_buildpack,
)

__all__ = ["build_app", "detect_app", "hybridless", "hybridless_run_image", "make_app",
           "register_buildpack"]


def pytest_configure(config: pytest.Config) -> None:
    """Register ``covers``: the contract items of lifecycle/hookspecs.py a test exercises."""
    config.addinivalue_line(
        "markers", "covers(*names): the hookspecs items (e.g. 'BuildContext.run') a test covers")
