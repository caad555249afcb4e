"""The ``[io.hybridless.buildpacks."hybridless/python"]`` table: its schema and typed values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TABLE = 'io.hybridless.buildpacks."hybridless/python"'

OPTIONS_SCHEMA: Mapping[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "install-project": {
            "type": "boolean",
            "description": "Also install the app itself as a package (pip install of its "
                           "pyproject.toml, without dependencies) into a 'project' layer, so "
                           "that its console scripts and entry points exist; descriptor "
                           "functions with a 'command' can then run them (default false).",
        },
    },
}


@dataclass(frozen=True)
class Options:
    """The buildpack's options with their defaults filled in."""

    install_project: bool = False


def parse_options(raw: Mapping[str, Any]) -> Options:
    """Type the options table; the lifecycle has already checked it against OPTIONS_SCHEMA."""
    return Options(install_project=bool(raw.get("install-project", False)))
