"""Stack files: the built-in ones load, and every kind of mistake names the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.errors import DescriptorSchemaError, DescriptorSyntaxError
from stacks import catalog
from stacks.model import load_file

GOOD = """\
id = "site-stack"
description = "A site stack"
platform = "linux/amd64"
user = { name = "svc", uid = 2000, gid = 2000 }
runtimes = ["nodejs20-22"]
provides = { nodejs = "20" }

[build-image]
recipe = { suite = "bookworm", packages = ["git", "ca-certificates"] }

[run-image]
reference = "docker://registry.example.com/base/node:20"
"""


def write(tmp_path: Path, text: str, name: str = "site-stack.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_valid_file_gives_typed_values(tmp_path: Path) -> None:
    stack = load_file(write(tmp_path, GOOD))
    assert stack.id == "site-stack" and stack.user.spec == "2000:2000"
    assert stack.provided == {"nodejs": "20"}
    assert stack.build_image.recipe is not None
    assert stack.build_image.recipe.packages == ("ca-certificates", "git")
    assert stack.build_image.recipe.security_mirror == "http://deb.debian.org/debian-security"
    assert stack.run_image.reference == "docker://registry.example.com/base/node:20"


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('id = "site-stack"', 'id = "site-stack"\npackges = []', "packges is not a known key"),
        ('id = "site-stack"\n', "", "id is missing"),
        ('id = "site-stack"', 'id = "Site Stack"', "id is 'Site Stack'"),
        ('id = "site-stack"', 'id = "other"', "id is 'other' but the file is named"),
        ('uid = 2000', 'uid = 0', "user is root"),
        ('uid = 2000', 'uid = "2000"', "user.uid must be an integer"),
        ('uid = 2000', 'uid = -1', "user.uid must be an integer"),
        ('name = "svc"', 'name = "svc; rm"', "user.name is"),
        ('gid = 2000 }', 'gid = 2000, home = "/" }', "user.home is not a known key"),
        ('["nodejs20-22"]', '["nodejs22-20"]', "runtimes[0]"),
        ('["nodejs20-22"]', "[]", "runtimes must be a non-empty list"),
        ('platform = "linux/amd64"', 'platform = "amd64"', "platform is 'amd64'"),
        ('"git", ', '"git", "Bad_Name", ', "build-image.recipe.packages[1]"),
        ('"git", ', '"--allow-unauthenticated", ', "build-image.recipe.packages[0]"),
        ('suite = "bookworm", ', 'suite = "bookworm", mirror = "ftp://x", ',
         "build-image.recipe.mirror"),
        ('suite = "bookworm", ', 'suite = "bookworm", variant = "minbase", ',
         "build-image.recipe.variant is not a known key"),
        ('reference = "docker://registry.example.com/base/node:20"',
         'reference = "ftp://x/y"', "run-image.reference is not an image reference"),
        ('reference = "docker://registry.example.com/base/node:20"',
         'reference = "docker://r.example/n:1"\nrecipe = { suite = "bookworm", packages = [] }',
         "run-image must have exactly one"),
        ('provides = { nodejs = "20" }', 'provides = "node"', "provides must be a table"),
    ],
)
def test_each_mistake_names_file_and_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(DescriptorSchemaError) as caught:
        load_file(path)
    assert str(path) in caught.value.message and key in caught.value.message
    assert caught.value.exit_code == 11


def test_bad_toml_and_bad_utf8_are_exit_10(tmp_path: Path) -> None:
    with pytest.raises(DescriptorSyntaxError, match=r"site-stack\.toml"):
        load_file(write(tmp_path, 'id = "site-stack\n'))
    path = tmp_path / "site-stack.toml"
    path.write_bytes(b'id = "\xff"\n')
    with pytest.raises(DescriptorSyntaxError, match="not UTF-8"):
        load_file(path)


def test_builtin_stacks_are_the_documented_set() -> None:
    stacks = {stack.id: stack for stack in catalog.load(environ={"HOME": "/nonexistent"}).stacks}
    recipes = {i for i, s in stacks.items() if s.run_image.recipe is not None}
    assert recipes == {f"debian-{suite}-{family}" for suite in ("bookworm", "trixie")
                       for family in ("nodejs", "python")}
    for suite in ("bookworm", "trixie"):
        node, python = stacks[f"debian-{suite}-nodejs"], stacks[f"debian-{suite}-python"]
        assert node.build_image == python.build_image  # one build image per suite
        assert node.run_image.recipe and python.run_image.recipe
        # Node.js comes as a layer; its official binaries link libstdc++ and libatomic.
        assert set(node.run_image.recipe.packages) == {"ca-certificates", "tzdata",
                                                       "libstdc++6", "libatomic1"}
        assert set(python.run_image.recipe.packages) == {"ca-certificates", "tzdata", "python3"}
        assert node.build_image.recipe is not None
        assert {"build-essential", "python3-dev", "python3-venv", "git", "pkg-config",
                "ca-certificates", "tzdata", "python3"} <= set(node.build_image.recipe.packages)
    assert stacks["debian-bookworm-python"].provided == {"python": "3.11"}
    assert stacks["debian-trixie-python"].provided == {"python": "3.13"}
    for major in (18, 20, 22, 24):
        assert stacks[f"node-{major}-bookworm-slim"].run_image.reference == (
            f"docker://docker.io/library/node:{major}-bookworm-slim")
        assert stacks[f"lambda-nodejs{major}"].provided == {"nodejs": str(major)}
    for minor in (10, 11, 12, 13):
        assert stacks[f"python-3.{minor}-slim-bookworm"].run_image.reference == (
            f"docker://docker.io/library/python:3.{minor}-slim-bookworm")
        assert stacks[f"lambda-python3.{minor}"].run_image.reference == (
            f"docker://public.ecr.aws/lambda/python:3.{minor}")
