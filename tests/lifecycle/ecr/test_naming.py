"""Repository names as Hybridless 0.1.46 makes them, and the default tag.

Expected names follow github.com/Hybridless/hybridless at 0.1.46 (commit 7cc06d0):
``src/resources/Image.ts`` ``_getECRRepoName`` →
``${plugin.getName()}/${imageName}-${stage}.v3``.toLowerCase(), with ``plugin.getName()`` in
``src/index.ts``, ``getImageName`` in ``src/resources/BaseEvents/FunctionContainerBaseEvent.ts``
(``${func.getName()}.${index}``) and ``Function.getName`` in ``src/resources/Function.ts``, all
through Serverless's ``getNormalizedFunctionName`` (``lib/plugins/aws/lib/naming.js``).
"""

from __future__ import annotations

import pytest

from lifecycle.ecr import EcrSettings, repository_name
from lifecycle.ecr.naming import (
    check_repository,
    default_tag,
    hybridless_repository,
    serverless_normalized,
)
from lifecycle.errors import DescriptorSchemaError, InvalidReference


@pytest.mark.parametrize(
    ("service", "function", "stage", "index", "expected"),
    [
        # Dashes are dropped before Serverless's normalisation ever sees them.
        ("orders-api", "get-user", "dev", 0, "ordersapi/getuser.0-dev.v3"),
        # Underscores become "Underscore"; the final lower-casing undoes every capital.
        (
            "my_service",
            "list_items",
            "prod",
            0,
            "myunderscoreservice/listunderscoreitems.0-prod.v3",
        ),
        ("Orders", "API", "Staging", 2, "orders/api.2-staging.v3"),
        ("a-b_c", "x", "qa-1", 1, "abunderscorec/x.1-qa-1.v3"),
    ],
)
def test_hybridless_names_match_hybridless_0_1_46(
    service: str, function: str, stage: str, index: int, expected: str
) -> None:
    assert hybridless_repository(service, function, stage, index) == expected


def test_serverless_normalisation_before_lower_casing() -> None:
    assert serverless_normalized("my-fn_x") == "MyDashfnUnderscorex"
    assert serverless_normalized("") == ""


@pytest.mark.parametrize(
    ("service", "function", "stage"),
    [
        ("Orders Service", "api", "dev"),  # a space survives normalisation: ECR refuses it
        ("ordérs", "api", "dev"),  # non-ASCII: JS and Python case rules differ
        ("orders", "api", "İ"),
        ("orders", "api", ""),  # empty stage leaves "api.0-.v3"
        ("orders", "api", "dev/../x"),
        ("x" * 300, "api", "dev"),
    ],
)
def test_hostile_names_are_refused(service: str, function: str, stage: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        hybridless_repository(service, function, stage)
    assert caught.value.exit_code == 61
    assert "\n" not in caught.value.message


def test_negative_event_index_is_refused() -> None:
    with pytest.raises(InvalidReference):
        hybridless_repository("orders", "api", "dev", -1)


@pytest.mark.parametrize("name", ["a", "UPPER", "a//b", "-a", "a-", "", "a" * 257, "a\nb"])
def test_check_repository_refuses(name: str) -> None:
    with pytest.raises(InvalidReference):
        check_repository(name)


def test_default_tag_is_twelve_hex_digits_of_the_manifest_digest() -> None:
    digest = "sha256:" + "0123456789ab" + "c" * 52
    assert default_tag(digest) == "0123456789ab"


@pytest.mark.parametrize(
    "digest", ["sha256:abc", "sha512:" + "a" * 128, "0123456789ab" + "c" * 52, "sha256:" + "A" * 64]
)
def test_default_tag_refuses_non_digests(digest: str) -> None:
    with pytest.raises(InvalidReference):
        default_tag(digest)


def test_repository_name_chooses_the_naming_and_the_service() -> None:
    plain = EcrSettings()
    named = EcrSettings(repository_naming="hybridless")
    own = EcrSettings(repository_naming="hybridless", service="billing-svc")
    kw = {"plain": "team/orders", "function": "get-user", "stage": None, "project_name": "Orders"}
    assert repository_name(plain, **kw) == "team/orders"  # type: ignore[arg-type]
    assert repository_name(named, **kw) == "orders/getuser.0-dev.v3"  # type: ignore[arg-type]
    assert repository_name(own, **kw) == "billingsvc/getuser.0-dev.v3"  # type: ignore[arg-type]
    with pytest.raises(DescriptorSchemaError):
        repository_name(named, plain="x", function="f", stage="dev", project_name=None)
    with pytest.raises(InvalidReference):
        repository_name(plain, plain="Team/Orders", function="f", stage=None, project_name=None)
