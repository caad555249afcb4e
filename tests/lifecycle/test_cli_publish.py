"""The CLI's run/invoke/ECR options: hostile values fail fast, with usage codes, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.image import reference
from lifecycle.run.load import engine_name
from tests.e2e.conftest import copy_example
from tests.infra.cli import CliRunner

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return copy_example("procfile-hello", tmp_path / "src")


@pytest.mark.parametrize("flags", [
    ["--keep-images", "0"],
    ["--keep-images", "many"],
    ["--resource-tag", "aws:owner=me"],
    ["--resource-tag", "novalue"],
    ["--resource-tag", "team=a;b"],
    ["--tag-mutability", "SOMETIMES"],
    ["--repository-naming", "clever"],
    ["--service", " "],
])
def test_bad_ecr_flags_are_usage_errors(cli: CliRunner, app: Path, flags: list[str]) -> None:
    result = cli("build", app, "--image", "x:1", "--run-image", "oci:/nonexistent", *flags)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("image", "tags", "fragment"), [
    ("hello:1", [], "needs a registry"),
    ("docker://127.0.0.1:5/any", ["oci:/tmp/x"], "its own repository"),
    ("docker://127.0.0.1:5/any", ["docker://127.0.0.1:5/a@" + DIGEST], "its own repository"),
])
def test_hybridless_naming_checks_its_references_before_building(
    cli: CliRunner, app: Path, image: str, tags: list[str], fragment: str
) -> None:
    tag_args = [arg for tag in tags for arg in ("--tag", tag)]
    result = cli("build", app, "--image", image, "--run-image", "oci:/nonexistent",
                 "--repository-naming", "hybridless", "--service", "orders", *tag_args)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert "building with" not in result.stderr  # refused before any buildpack ran


def test_an_unreadable_event_is_a_usage_error(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("invoke", "docker-daemon:nothing:here", "--event", str(tmp_path / "absent"))
    assert result.returncode == 2 and "--event" in result.stderr


@pytest.mark.parametrize("args", [
    ["run", "x:1", "-p", "99999:80"],
    ["run", "x:1", "-e", "1BAD=x"],
    ["run", "x:1", "--env-file", "/nonexistent/env"],
    ["run", "not a ref"],
])
def test_bad_run_options_are_refused(cli: CliRunner, args: list[str]) -> None:
    result = cli(*args)
    assert result.returncode in (2, 61), result.stderr
    assert "Traceback" not in result.stderr


def test_engine_names() -> None:
    def name(text: str) -> str:
        return engine_name(reference.parse(text), DIGEST)

    assert name("hello:1") == "hello:1"
    assert name("docker://127.0.0.1:5000/team/app:v2") == "127.0.0.1:5000/team/app:v2"
    pinned = f"docker://127.0.0.1:5000/team/app@{DIGEST}"
    assert name(pinned) == "127.0.0.1:5000/team/app:abababababab"
    assert name("oci:/tmp/layout:tag") == "hybridless-run:abababababab"
    assert name("docker-archive:/tmp/a.tar:app:3") == "app:3"


def test_launcher_defaults_are_read_back_per_process() -> None:
    from lifecycle.hookspecs import Process
    from lifecycle.phases.launcher import render
    from lifecycle.run.defaults import parse_defaults

    hostile = "it's $(rm -rf /) `x` \"q\" ; }"
    fn = Process("fn", ("node", "x.js"), "lambdaContainer",
                 {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "TIMEOUT": "10000", "ODD": hostile,
                  "EMPTY": ""})
    other = Process("other", ("true",), "process", {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"})
    script = render([fn, other], fn)
    assert parse_defaults(script, "fn") == {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
                                            "TIMEOUT": "10000", "ODD": hostile, "EMPTY": ""}
    assert parse_defaults(script, "other") == {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}
    assert parse_defaults(script, "absent") == {}
    assert parse_defaults(b"\xff\xfe not a launcher", "fn") == {}
