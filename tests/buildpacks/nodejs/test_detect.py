"""Detect: which apps the Node.js buildpack claims, and the function it infers without one."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from buildpacks.nodejs import NodejsBuildpack
from lifecycle.descriptor import Descriptor, Function
from lifecycle.hookspecs import DetectContext, DetectResult
from tests.buildpacks.nodejs.conftest import write_tree
from tests.e2e.conftest import run_json
from tests.infra.cli import CliRunner


def detect(app: Path, functions: tuple[Function, ...] = ()) -> DetectResult:
    ctx = DetectContext(app_dir=app, descriptor=Descriptor(functions=functions), options={},
                        platform_env={}, log=logging.getLogger("test"))
    return NodejsBuildpack().detect(ctx)


@pytest.mark.parametrize(("files", "handler"), [
    ({"package.json": "{}", "index.js": "exports.handler = async () => 1;"}, "index.handler"),
    ({"package.json": "{}", "src/handler.js": "export const handler = () => 1;"},
     "src/handler.handler"),
    # index.js without a handler export loses to handler.js, which has one.
    ({"package.json": "{}", "index.js": "console.log(1)",
      "handler.js": "export async function handler() {}"}, "handler.handler"),
    ({"handler.js": "module.exports = { handler }"}, "handler.handler"),
])
def test_infers_one_httpd_function_main(tmp_path: Path, files: dict[str, str],
                                        handler: str) -> None:
    result = detect(write_tree(tmp_path, files))
    assert result.passed, result.reason
    assert result.functions == (Function(name="main", handler=handler, event="httpd"),)
    assert result.provides == ("node",) and result.requires[0].name == "node"


def test_descriptor_handler_in_mjs_passes_without_package_json(tmp_path: Path) -> None:
    write_tree(tmp_path, {"lib/fn.mjs": "export const go = () => 1;"})
    result = detect(tmp_path, (Function("f", handler="lib/fn.go", runtime="nodejs20"),))
    assert result.passed and result.functions == ()
    assert result.requires[0].metadata["requested"] == "20"


@pytest.mark.parametrize(("files", "functions", "reason"), [
    ({"app.py": "def handler(): pass"}, (Function("f", handler="app.handler"),),
     "no descriptor function has a JavaScript handler"),
    ({"README.md": "hi"}, (), "no package.json and no JavaScript handler"),
    ({"package.json": "{}"}, (), "none of index.js, handler.js, src/index.js, src/handler.js"),
    ({"package.json": "{}", "Procfile": "web: node server.js"}, (), "left to hybridless/procfile"),
    ({"package.json": "{not json"}, (), "failed to read package.json"),
])
def test_fails_with_a_reason(tmp_path: Path, files: dict[str, str],
                             functions: tuple[Function, ...], reason: str) -> None:
    result = detect(write_tree(tmp_path, files), functions)
    assert not result.passed
    assert reason in result.reason


def test_package_json_with_command_functions_passes(tmp_path: Path) -> None:
    write_tree(tmp_path, {"package.json": "{}", "server.js": ""})
    assert detect(tmp_path, (Function("web", command=("node", "server.js")),)).passed


def test_cli_detect_prints_the_inferred_function_and_plans_the_version(
        cli: CliRunner, tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", {
        "package.json": json.dumps({"engines": {"node": "20.x"}}),
        "src/index.js": "exports.handler = async () => ({ statusCode: 200 });"})
    result = cli("detect", app)
    assert result.returncode == 0, result.stderr
    assert "inferred function 'main': httpd src/index.handler" in result.stderr
    doc = run_json(cli, "detect", app)
    assert doc["group"][0]["id"] == "hybridless/nodejs" and doc["functions"] == ["main"]
    assert doc["plan"] == [{"name": "node", "provider": "hybridless/nodejs",
                            "required_by": ["hybridless/nodejs"],
                            "metadata": {"requested": "20.x", "major": 20,
                                         "source": "package.json engines.node"}}]
