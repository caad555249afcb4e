"""The ``[io.hybridless.buildpacks."hybridless/nodejs"]`` table: its schema and typed values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TABLE = 'io.hybridless.buildpacks."hybridless/nodejs"'

OPTIONS_SCHEMA: Mapping[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "bundle": {
            "type": "boolean",
            "description": "Bundle with the project's own webpack when it has a webpack config "
                           "(default true).",
        },
        "node": {
            "enum": ["layer", "image"],
            "description": "Where Node.js comes from: \"layer\" installs the requested version "
                           "from the npm registry into a node layer; \"image\" uses the run "
                           "image's own (default: \"image\" when the stack provides Node.js, "
                           "else \"layer\").",
        },
        "build-script": {
            "type": "string",
            "description": "The package.json script run with dev dependencies before export "
                           "(default \"build\"; \"\" runs none).",
        },
    },
}


@dataclass(frozen=True)
class Options:
    """The buildpack's options with their defaults filled in."""

    bundle: bool = True
    build_script: str = "build"
    node: str | None = None


def parse_options(raw: Mapping[str, Any]) -> Options:
    """Type the options table; the lifecycle has already checked it against OPTIONS_SCHEMA.

    The check happens once, centrally, right after detect (exit 11 naming the key), so this
    does not import jsonschema again: a no-change rebuild must not pay for it.
    """
    return Options(bundle=bool(raw.get("bundle", True)),
                   build_script=str(raw.get("build-script", "build")),
                   node=str(raw["node"]) if "node" in raw else None)
