"""Built-in and user stacks together: lookup, override, and which stacks serve a runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.errors import BaseImageNotFound, DescriptorSchemaError
from stacks import catalog
from stacks.runtimes import parse_runtime

OVERRIDE = """\
id = "debian-bookworm-nodejs"
description = "bookworm from the site mirror"
platform = "linux/amd64"
user = { name = "app", uid = 1000, gid = 1000 }
runtimes = ["nodejs18-24"]

[build-image]
recipe = { suite = "bookworm", packages = ["git"], mirror = "http://mirror.example/debian" }

[run-image]
recipe = { suite = "bookworm", packages = ["tzdata"], mirror = "http://mirror.example/debian" }
"""


def user_stacks(tmp_path: Path) -> tuple[dict[str, str], Path]:
    directory = tmp_path / "config" / "hybridless" / "stacks"
    directory.mkdir(parents=True)
    return {"XDG_CONFIG_HOME": str(tmp_path / "config")}, directory


def test_a_user_file_replaces_the_builtin_of_its_id(tmp_path: Path) -> None:
    environ, directory = user_stacks(tmp_path)
    (directory / "debian-bookworm-nodejs.toml").write_text(OVERRIDE)
    stack = catalog.load(environ).get("debian-bookworm-nodejs")
    assert stack.source == directory / "debian-bookworm-nodejs.toml"
    assert stack.run_image.recipe is not None
    assert stack.run_image.recipe.mirror == "http://mirror.example/debian"
    assert catalog.load({"XDG_CONFIG_HOME": str(tmp_path / "none")}).get(
        "debian-bookworm-nodejs").source.parent == catalog.BUILTIN_DIR


def test_a_broken_user_file_fails_the_whole_catalog_naming_it(tmp_path: Path) -> None:
    environ, directory = user_stacks(tmp_path)
    (directory / "mine.toml").write_text('id = "mine"\nsurprise = 1\n')
    with pytest.raises(DescriptorSchemaError, match=r"mine\.toml: surprise is not a known key"):
        catalog.load(environ)


def test_an_unknown_id_is_exit_30_listing_the_known_ones() -> None:
    with pytest.raises(BaseImageNotFound) as caught:
        catalog.load({"XDG_CONFIG_HOME": "/nonexistent"}).get("debian-sid-cobol")
    assert caught.value.exit_code == 30 and "debian-bookworm-python" in str(caught.value.hint)


def test_recipe_stacks_come_first_among_those_serving_a_runtime() -> None:
    known = catalog.load({"XDG_CONFIG_HOME": "/nonexistent"})
    assert [s.id for s in known.serving(parse_runtime("nodejs22"))][:3] == [
        "debian-bookworm-nodejs", "debian-trixie-nodejs", "lambda-nodejs22"]
    assert [s.id for s in known.serving(parse_runtime("python3.12"))] == [
        "lambda-python3.12", "python-3.12-slim-bookworm"]
    assert known.serving(parse_runtime("python3.13"))[0].id == "debian-trixie-python"
