"""The ``[io.hybridless.buildpacks."hybridless/nodejs"]`` table: its schema and typed values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lifecycle.errors import DescriptorSchemaError

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


def parse_options(raw: Mapping[str, Any]) -> Options:
    """Validate the options table and type it; a wrong key or type exits 11 naming it."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(OPTIONS_SCHEMA)
    errors = sorted(validator.iter_errors(dict(raw)), key=lambda e: list(map(str, e.path)))
    if errors:
        error = errors[0]
        valid = ", ".join(sorted(OPTIONS_SCHEMA["properties"]))
        if error.validator == "additionalProperties":
            unknown = sorted(set(raw) - set(OPTIONS_SCHEMA["properties"]))
            raise DescriptorSchemaError(
                f"failed to read {TABLE}: unknown option '{unknown[0]}'; valid options: {valid}")
        key = ".".join(map(str, error.path)) or "(table)"
        raise DescriptorSchemaError(f"failed to read {TABLE}: {key}: {error.message}",
                                    hint=f"valid options: {valid}")
    return Options(bundle=raw.get("bundle", True), build_script=raw.get("build-script", "build"))
