"""Which files ``install-project`` copies for pip and keys the ``project`` layer by."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildpacks.python.package import source_files, sources_digest
from lifecycle.errors import BuildpackFailed


def test_links_hidden_directories_and_tool_output_are_left_out(tmp_path: Path) -> None:
    outside = tmp_path / "host-secret"
    outside.write_text("not for the wheel\n")
    app = tmp_path / "app"
    for name in ("pyproject.toml", "pkg/__init__.py", "pkg/data/x.json", ".git/HEAD",
                 "pkg/__pycache__/m.pyc", "tool.egg-info/PKG-INFO", "build/lib/pkg.py",
                 "docs/build/index.md", ".env"):
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(name)
    (app / "pkg" / "leak.py").symlink_to(outside)
    (app / "linked-dir").symlink_to(tmp_path, target_is_directory=True)
    assert source_files(app) == ["docs/build/index.md", "pkg/__init__.py", "pkg/data/x.json",
                                 "pyproject.toml"]


def test_the_digest_follows_contents_names_and_the_executable_bit(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    first = sources_digest(tmp_path, ["a.py"])
    assert sources_digest(tmp_path, ["a.py"]) == first
    (tmp_path / "a.py").chmod(0o755)
    assert sources_digest(tmp_path, ["a.py"]) != first
    (tmp_path / "a.py").chmod(0o644)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert sources_digest(tmp_path, ["a.py"]) != first



def test_a_tree_that_cannot_be_listed_fails_instead_of_packaging_nothing(tmp_path: Path
                                                                       ) -> None:
    # os.walk skips what it cannot list unless told otherwise; a gone directory stands in for
    # an unreadable one, which root (CI) could read anyway.
    with pytest.raises(BuildpackFailed, match="failed to read the project's sources"):
        source_files(tmp_path / "gone")


def test_a_file_gone_before_it_is_read_fails_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(BuildpackFailed, match=r"source vanished\.py"):
        sources_digest(tmp_path, ["vanished.py"])


def test_a_build_that_reuses_its_dependencies_keeps_the_pip_venv() -> None:
    """Re-declared as it was, with no command run: an undeclared layer would be deleted and
    left out of the cache image (tests/e2e/test_lifecycle_image.py shows the image stable)."""
    from types import SimpleNamespace

    from buildpacks.python import layers

    declared: list[tuple[str, dict[str, object]]] = []

    def layer(name: str, **flags: object) -> None:
        declared.append((name, flags))

    venv = {"layout": layers.LAYOUT, "python": "3.13.5"}
    layers.keep_pip(SimpleNamespace(previous={"pip": venv}, layer=layer))  # type: ignore[arg-type]
    assert declared == [("pip", {"metadata": venv, "cache": True})]
    declared.clear()
    layers.keep_pip(SimpleNamespace(previous={}, layer=layer))  # type: ignore[arg-type]
    assert declared == []
