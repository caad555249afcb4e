"""``[io.hybridless.ecr]`` and the command-line overrides."""

from __future__ import annotations

import pytest
import tomli

from lifecycle.ecr.settings import EcrOverrides, EcrSettings, from_table, merge, parse_tag_flag
from lifecycle.errors import DescriptorSchemaError, UsageError


def _table(text: str) -> dict[str, object]:
    return tomli.loads(text)["io"]["hybridless"]["ecr"]  # type: ignore[no-any-return]


def test_defaults() -> None:
    assert from_table(None) == EcrSettings()
    assert from_table({}).keep_images == 100
    assert from_table({}).encryption == "AES256"


def test_every_key_is_read() -> None:
    settings = from_table(
        _table(
            """
            [io.hybridless.ecr]
            create-repository = false
            tag-mutability = "IMMUTABLE"
            scan-on-push = false
            keep-images = 7
            tags = { team = "orders", "équipe" = "données" }
            repository-naming = "hybridless"
            service = "orders"
            """
        )
    )
    assert settings == EcrSettings(
        create_repository=False,
        tag_mutability="IMMUTABLE",
        scan_on_push=False,
        keep_images=7,
        tags=(("team", "orders"), ("équipe", "données")),
        repository_naming="hybridless",
        service="orders",
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("keep-image = 3", "unknown key 'keep-image'"),
        ('tag-mutability = "mutable"', "tag-mutability must be one of"),
        ("keep-images = true", "keep-images"),
        ("keep-images = 0", "keep-images"),
        ("keep-images = 1.5", "keep-images"),
        ('scan-on-push = "yes"', "scan-on-push must be true or false"),
        ('tags = "team=orders"', "tags must be a table"),
        ("tags = { team = 3 }", "string value"),
        ('tags = { team = "🚀" }', "character AWS refuses"),
        ('tags = { "aws:team" = "x" }', "reserved"),
        ('tags = { "a\\u0000b" = "x" }', "character AWS refuses"),
        ('repository-naming = "serverless"', "repository-naming must be one of"),
        ('service = ""', "service must be a non-empty string"),
    ],
)
def test_hostile_tables_name_the_key(body: str, fragment: str) -> None:
    with pytest.raises(DescriptorSchemaError) as caught:
        from_table(_table(f"[io.hybridless.ecr]\n{body}\n"))
    assert caught.value.exit_code == 11
    assert fragment in str(caught.value)
    assert "[io.hybridless.ecr]" in caught.value.message


def test_too_many_tags() -> None:
    tags = ", ".join(f"k{i} = 'v'" for i in range(51))
    with pytest.raises(DescriptorSchemaError, match="at most 50"):
        from_table(_table(f"[io.hybridless.ecr]\ntags = {{ {tags} }}\n"))


def test_flags_override_the_descriptor() -> None:
    base = from_table({"tags": {"team": "orders", "cost": "a"}, "keep-images": 5})
    merged = merge(
        base,
        EcrOverrides(
            tag_mutability="immutable",
            keep_images=9,
            tags=(("cost", "b"),),
            repository_naming="hybridless",
            create_repository=False,
        ),
    )
    assert merged.tag_mutability == "IMMUTABLE"
    assert merged.keep_images == 9
    assert merged.tags == (("cost", "b"), ("team", "orders"))
    assert merged.repository_naming == "hybridless"
    assert merged.create_repository is False
    assert merged.scan_on_push is True  # untouched
    assert merge(base, EcrOverrides()) == base


@pytest.mark.parametrize(
    "overrides",
    [
        EcrOverrides(tag_mutability="sometimes"),
        EcrOverrides(keep_images=-1),
        EcrOverrides(repository_naming="HYBRIDLESS"),
        EcrOverrides(service="  "),
        EcrOverrides(tags=(("k", "\x1b[31m"),)),
    ],
)
def test_bad_flags_are_usage_errors(overrides: EcrOverrides) -> None:
    with pytest.raises(UsageError) as caught:
        merge(EcrSettings(), overrides)
    assert caught.value.exit_code == 2


def test_tag_flag() -> None:
    assert parse_tag_flag("team=orders=x") == ("team", "orders=x")
    assert parse_tag_flag("empty=") == ("empty", "")
    for bad in ("novalue", "=x", "aws:x=1"):
        with pytest.raises(UsageError):
            parse_tag_flag(bad)
