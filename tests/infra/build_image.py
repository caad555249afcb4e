"""A build image for the container-executor tests: Debian with a compiler and Python headers.

Made by mmdebstrap like the Debian base (tests/infra/images.py), with the packages a stack's
build image has, and cached in its own directory under ``~/.cache/hybridless-tests``.
"""

from __future__ import annotations

from pathlib import Path

from tests.infra.images import BaseImage, DebianRecipe, build_debian_base, cache_root

BUILD_PACKAGES = ("build-essential", "ca-certificates", "python3", "python3-dev",
                  "python3-venv", "pkg-config")


def build_image_cache() -> Path:
    """Where the build image's layout is kept (apart from the Debian base, which its builder
    prunes per suite)."""
    return cache_root() / "build-image"


def build_build_image() -> BaseImage:
    """Return the build image layout, building it first when it is missing."""
    recipe = DebianRecipe(packages=BUILD_PACKAGES)
    return build_debian_base(build_image_cache(), recipe, tag="build")
