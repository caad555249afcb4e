"""One list of HTTP event formats: the schema's enum, the engine's literal and both shims'."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import get_args

from lifecycle import descriptor

ROOT = Path(__file__).resolve().parents[2]


def _schema_enum() -> list[str]:
    schema = json.loads(descriptor.SCHEMA_PATH.read_text())
    found: list[list[str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "http-format" in node:
                found.append(node["http-format"]["enum"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    (enum,) = {tuple(e) for e in found}
    return list(enum)


def _python_shim_formats() -> list[str]:
    # Read, not imported: the shim runs inside images and is no part of the engine's imports.
    tree = ast.parse((ROOT / "buildpacks/python/shim/hybridless_shim/settings.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "HTTP_FORMATS":
            return list(ast.literal_eval(node.value))
    raise AssertionError("HTTP_FORMATS not found in the Python shim's settings")


def _node_shim_formats() -> list[str]:
    text = (ROOT / "buildpacks/nodejs/shim/settings.mjs").read_text()
    match = re.search(r"const HTTP_FORMATS = \[([^\]]*)\]", text)
    assert match, "HTTP_FORMATS not found in the Node shim's settings"
    return re.findall(r"'([^']*)'", match.group(1))


def test_the_literal_is_the_schema_enum() -> None:
    assert list(get_args(descriptor.HttpFormat)) == _schema_enum()
    assert descriptor.DEFAULT_HTTP_FORMAT in get_args(descriptor.HttpFormat)


def test_both_shims_accept_exactly_the_schema_enum() -> None:
    assert _python_shim_formats() == _schema_enum()
    assert _node_shim_formats() == _schema_enum()


def test_a_function_without_http_format_gets_the_default() -> None:
    assert descriptor.Function("f").http_format == descriptor.DEFAULT_HTTP_FORMAT
