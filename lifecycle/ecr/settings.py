"""ECR settings: the descriptor's ``[io.hybridless.ecr]`` table and the flags that override it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal, NoReturn, get_args

from lifecycle.errors import DescriptorSchemaError, UsageError

TagMutability = Literal["MUTABLE", "IMMUTABLE"]
RepositoryNaming = Literal["plain", "hybridless"]
Encryption = Literal["AES256", "KMS"]

TABLE = "io.hybridless.ecr"
KEYS = (
    "create-repository",
    "tag-mutability",
    "scan-on-push",
    "keep-images",
    "tags",
    "repository-naming",
    "service",
)
# ECR's lifecycle policy rule takes countNumber >= 1; an upper bound catches typos.
_MAX_KEEP = 10000
# AWS resource tags: Unicode letters, digits, spaces and _ . : / = + - @; keys 1-128 long,
# values up to 256; the "aws:" prefix is reserved for AWS.
_TAG_TEXT_RE = re.compile(r"[\w .:/=+\-@]*")
_MAX_TAGS = 50


# Raises the error that fits where a value came from: the descriptor (11) or a flag (2).
_Fail = Callable[[str, "str | None"], NoReturn]


@dataclass(frozen=True)
class EcrSettings:
    """How repositories are named and what a repository created on first push looks like."""

    create_repository: bool = True
    tag_mutability: TagMutability = "MUTABLE"
    scan_on_push: bool = True
    keep_images: int = 100
    tags: tuple[tuple[str, str], ...] = ()
    repository_naming: RepositoryNaming = "plain"
    service: str | None = None
    # Not a descriptor key (CONTRACT §5 lists those): ECR's own default, spelt out so that the
    # repository we create says what it is.
    encryption: Encryption = "AES256"


@dataclass(frozen=True)
class EcrOverrides:
    """Command-line values of the same names; ``None`` (or no tags) leaves the descriptor's."""

    create_repository: bool | None = None
    tag_mutability: str | None = None
    scan_on_push: bool | None = None
    keep_images: int | None = None
    tags: tuple[tuple[str, str], ...] = ()
    repository_naming: str | None = None
    service: str | None = None


def from_table(table: Mapping[str, object] | None) -> EcrSettings:
    """Read ``[io.hybridless.ecr]`` (already parsed TOML); ``None`` gives the defaults."""
    if table is None:
        return EcrSettings()
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        _schema(f"unknown key {unknown[0]!r}", f"valid keys: {', '.join(KEYS)}")
    settings = EcrSettings()
    if "create-repository" in table:
        settings = replace(settings, create_repository=_bool(table, "create-repository"))
    if "tag-mutability" in table:
        value = _choice(table["tag-mutability"], get_args(TagMutability), "tag-mutability", _schema)
        settings = replace(settings, tag_mutability=value)  # type: ignore[arg-type]
    if "scan-on-push" in table:
        settings = replace(settings, scan_on_push=_bool(table, "scan-on-push"))
    if "keep-images" in table:
        settings = replace(settings, keep_images=_keep(table["keep-images"], _schema))
    if "tags" in table:
        raw = table["tags"]
        if not isinstance(raw, Mapping):
            _schema("tags must be a table of strings", 'e.g. tags = { team = "orders" }')
        settings = replace(settings, tags=_tags(raw.items(), _schema))
    if "repository-naming" in table:
        naming = _choice(
            table["repository-naming"], get_args(RepositoryNaming), "repository-naming", _schema
        )
        settings = replace(settings, repository_naming=naming)  # type: ignore[arg-type]
    if "service" in table:
        service = table["service"]
        if not isinstance(service, str) or not service.strip():
            _schema("service must be a non-empty string", 'e.g. service = "orders"')
        settings = replace(settings, service=service)
    return settings


def merge(settings: EcrSettings, overrides: EcrOverrides) -> EcrSettings:
    """Apply command-line overrides; flag tags add to (and replace keys of) the descriptor's."""
    merged = settings
    if overrides.create_repository is not None:
        merged = replace(merged, create_repository=overrides.create_repository)
    if overrides.tag_mutability is not None:
        value = _choice(
            overrides.tag_mutability.upper(), get_args(TagMutability), "--tag-mutability", _usage
        )
        merged = replace(merged, tag_mutability=value)  # type: ignore[arg-type]
    if overrides.scan_on_push is not None:
        merged = replace(merged, scan_on_push=overrides.scan_on_push)
    if overrides.keep_images is not None:
        merged = replace(merged, keep_images=_keep(overrides.keep_images, _usage))
    if overrides.tags:
        combined = dict(merged.tags)
        combined.update(_tags(overrides.tags, _usage))
        merged = replace(merged, tags=_tags(combined.items(), _usage))
    if overrides.repository_naming is not None:
        naming = _choice(
            overrides.repository_naming, get_args(RepositoryNaming), "--repository-naming", _usage
        )
        merged = replace(merged, repository_naming=naming)  # type: ignore[arg-type]
    if overrides.service is not None:
        if not overrides.service.strip():
            _usage("--service must not be empty", None)
        merged = replace(merged, service=overrides.service)
    return merged


def parse_tag_flag(text: str) -> tuple[str, str]:
    """Split a ``KEY=VALUE`` resource-tag flag; the value may be empty, the key may not."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        _usage(f"resource tag {text!r} is not KEY=VALUE", "e.g. team=orders")
    return _tags([(key, value)], _usage)[0]


def _schema(why: str, hint: str | None) -> NoReturn:
    raise DescriptorSchemaError(f"failed to read [{TABLE}]: {why}", hint=hint)


def _usage(why: str, hint: str | None) -> NoReturn:
    raise UsageError(f"failed to read the ECR options: {why}", hint=hint)


def _bool(table: Mapping[str, object], key: str) -> bool:
    value = table[key]
    if not isinstance(value, bool):
        _schema(f"{key} must be true or false, not {value!r}", None)
    return bool(value)


def _choice(value: object, choices: tuple[str, ...], name: str, fail: _Fail) -> str:
    if not isinstance(value, str) or value not in choices:
        fail(f"{name} must be one of {', '.join(choices)}, not {value!r}", None)
    return str(value)


def _keep(value: object, fail: _Fail) -> int:
    # bool is an int in Python: "keep-images = true" must not read as 1.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_KEEP:
        fail(f"keep-images must be a whole number from 1 to {_MAX_KEEP}, not {value!r}", None)
    return value


def _tags(items: Iterable[tuple[object, object]], fail: _Fail) -> tuple[tuple[str, str], ...]:
    pairs: dict[str, str] = {}
    for key, value in items:
        if not isinstance(key, str) or not isinstance(value, str):
            fail(f"tag {key!r} must have a string value, not {value!r}", None)
        if not 1 <= len(key) <= 128 or len(value) > 256:
            fail(f"tag {key!r}: keys take 1-128 characters and values at most 256", None)
        if key.lower().startswith("aws:"):
            fail(f"tag {key!r}: the aws: prefix is reserved for AWS", None)
        for text in (key, value):
            if not _TAG_TEXT_RE.fullmatch(text):
                fail(
                    f"tag {key!r}={value!r} holds a character AWS refuses",
                    "tags take letters (any script), digits, spaces and _ . : / = + - @",
                )
        pairs[key] = value
    if len(pairs) > _MAX_TAGS:
        fail(f"{len(pairs)} tags given; AWS allows at most {_MAX_TAGS} per resource", None)
    return tuple(sorted(pairs.items()))
