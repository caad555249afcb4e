"""Python version selection: descriptor runtime, then .python-version, then requires-python."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildpacks.python import versions
from lifecycle.descriptor import Function
from lifecycle.errors import BuildpackFailed


def fn(name: str = "api", runtime: str | None = None) -> Function:
    return Function(name=name, handler="app.handler", runtime=runtime)


def test_the_descriptor_runtime_wins_over_every_file(tmp_path: Path) -> None:
    (tmp_path / ".python-version").write_text("3.10\n")
    chosen = versions.select([fn(runtime="python3.12")], tmp_path, ">=3.13")
    assert chosen == versions.PythonVersion("3.12", "runtime of function 'api'")


def test_python_version_file_is_read_to_major_minor(tmp_path: Path) -> None:
    (tmp_path / ".python-version").write_text("# pinned by pyenv\n3.13.1\n")
    assert versions.select([fn()], tmp_path, ">=3.10").version == "3.13"


def test_requires_python_picks_the_default_when_it_allows_it(tmp_path: Path) -> None:
    chosen = versions.select([fn()], tmp_path, ">=3.10,<4")
    assert (chosen.version, chosen.source) == ("3.11", "requires-python '>=3.10,<4'")


@pytest.mark.parametrize(("spec", "expected"), [
    (">=3.12", "3.12"),
    ("<3.11", "3.10"),
    ("~=3.13.0", "3.13"),
    ("==3.12.*", "3.12"),
    ("!=3.11.*", "3.12"),
    ("<3.11.4", "3.11"),
    (">3.11", "3.11"),
])
def test_requires_python_picks_the_allowed_version_nearest_the_default(
        spec: str, expected: str) -> None:
    assert versions.from_specifier(spec) == expected


def test_nothing_requested_means_the_default_stack_python(tmp_path: Path) -> None:
    assert versions.select([fn()], tmp_path, None) == versions.PythonVersion("3.11", "default")


def test_an_unsupported_runtime_names_the_supported_ones(tmp_path: Path) -> None:
    (tmp_path / ".python-version").write_text("3.9\n")
    with pytest.raises(BuildpackFailed) as caught:
        versions.select([fn()], tmp_path, None)
    assert "'3.9'" in str(caught.value) and "3.10, 3.11, 3.12, 3.13" in str(caught.value)


def test_requires_python_that_allows_nothing_is_refused() -> None:
    with pytest.raises(BuildpackFailed, match="allows none of"):
        versions.from_specifier("<3.8")


def test_functions_asking_for_different_pythons_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildpackFailed, match="different versions"):
        versions.select([fn("a", "python3.11"), fn("b", "python3.12")], tmp_path, None)
