"""Reference parsing: every form of docs/reference.md §2, its canonical spelling, clear errors."""

from __future__ import annotations

import pytest

from lifecycle.errors import InvalidReference
from lifecycle.image.reference import Reference, parse

DIGEST = "sha256:" + "ab" * 32

VALID = [
    # text, expected fields, canonical str
    ("app", Reference("store", name="app", tag="latest"), "app:latest"),
    ("app:v1", Reference("store", name="app", tag="v1"), "app:v1"),
    ("team/app.x_y-z:1.0_RC", Reference("store", name="team/app.x_y-z", tag="1.0_RC"), None),
    ("a" * 200 + ":" + "T" * 128, Reference("store", name="a" * 200, tag="T" * 128), None),
    ("oci:out", Reference("oci", path="out"), "oci:out"),
    ("oci:./out:v1", Reference("oci", path="./out", tag="v1"), None),
    ("oci:/abs/path/out:latest", Reference("oci", path="/abs/path/out", tag="latest"), None),
    ("oci:C:\\images\\base", Reference("oci", path="C:\\images\\base"), None),
    ("oci:C:\\images\\base:v2", Reference("oci", path="C:\\images\\base", tag="v2"), None),
    ("oci:C:relative", Reference("oci", path="C:relative"), None),
    ("oci:/data/a:b/c", Reference("oci", path="/data/a:b/c"), None),
    ("oci:../up/dir:x", Reference("oci", path="../up/dir", tag="x"), None),
    ("oci-archive:img.tar", Reference("oci-archive", path="img.tar"), None),
    ("oci-archive:img.tar:v3", Reference("oci-archive", path="img.tar", tag="v3"), None),
    ("docker-archive:out.tar", Reference("docker-archive", path="out.tar"), None),
    (
        "docker-archive:out.tar:app:1",
        Reference("docker-archive", path="out.tar", name="app", tag="1"),
        None,
    ),
    (
        "docker-archive:/x/y.tar:localhost:5000/team/app:1",
        Reference("docker-archive", path="/x/y.tar", name="localhost:5000/team/app", tag="1"),
        None,
    ),
    (
        "docker-archive:C:\\x\\y.tar:app:v1",
        Reference("docker-archive", path="C:\\x\\y.tar", name="app", tag="v1"),
        None,
    ),
    ("docker-daemon:app:1", Reference("docker-daemon", name="app", tag="1"), None),
    (
        "docker-daemon:app",
        Reference("docker-daemon", name="app", tag="latest"),
        "docker-daemon:app:latest",
    ),
    (
        "docker://localhost:5000/team/app:2",
        Reference("docker", host="localhost:5000", name="team/app", tag="2"),
        None,
    ),
    (
        "docker://registry.example.com/app",
        Reference("docker", host="registry.example.com", name="app", tag="latest"),
        "docker://registry.example.com/app:latest",
    ),
    (
        "docker://alpine:3",
        Reference("docker", host="docker.io", name="library/alpine", tag="3"),
        "docker://docker.io/library/alpine:3",
    ),
    (
        "docker://docker.io/user/app",
        Reference("docker", host="docker.io", name="user/app", tag="latest"),
        "docker://docker.io/user/app:latest",
    ),
    (
        f"docker://123.dkr.ecr.eu-west-1.amazonaws.com/app@{DIGEST}",
        Reference("docker", host="123.dkr.ecr.eu-west-1.amazonaws.com", name="app", digest=DIGEST),
        None,
    ),
]


@pytest.mark.parametrize(("text", "expected", "canonical"), VALID, ids=[v[0][:40] for v in VALID])
def test_valid_forms_parse_to_their_fields_and_back(
    text: str, expected: Reference, canonical: str | None
) -> None:
    ref = parse(text)
    assert ref == expected
    assert str(ref) == (canonical or text)
    assert parse(str(ref)) == ref


INVALID = [
    # text, fragment the message must contain
    ("", "empty"),
    (" app", "surrounding spaces"),
    ("App", "'App' is not a valid image name"),
    ("app_:1", "'app_' is not a valid image name"),
    ("a//b", "is not a valid image name"),
    ("app:", "'' is not a valid tag"),
    ("app:-x", "'-x' is not a valid tag"),
    ("app:" + "t" * 129, "is not a valid tag"),
    ("a" * 256, "longer than 255"),
    ("localhost:5000/app", "store names carry no registry host"),
    ("oci:", "the path is empty"),
    ("oci::v1", "the path is empty"),
    ("oci:dir:", "tag after the last ':' is empty"),
    ("oci-archive:", "the path is empty"),
    ("docker-archive:", "the file path is empty"),
    ("docker-daemon:Bad:1", "'Bad' is not a valid image name"),
    ("docker:app", "docker://HOST/REPO"),
    ("docker://", "names no repository"),
    ("docker://bad_host.io/app", "'bad_host.io' is not a registry host"),
    ("docker://reg.io/app@sha256:abc", "is not a digest"),
    ("docker://reg.io/app:bad/tag", "is not a valid tag"),
    ("dir:/some/where", "the transport 'dir:' is unknown"),
    ("containers-storage:app", "the transport 'containers-storage:' is unknown"),
    ("s3://bucket/key", "the transport 's3:' is unknown"),
]


@pytest.mark.parametrize(("text", "fragment"), INVALID, ids=[i[0][:30] or "empty" for i in INVALID])
def test_invalid_forms_name_the_input_the_reason_and_the_valid_forms(
    text: str, fragment: str
) -> None:
    with pytest.raises(InvalidReference) as caught:
        parse(text)
    message = str(caught.value)
    assert f"failed to parse image reference {text!r}" in message
    assert fragment in message
    assert "oci:DIR[:TAG]" in message and "docker://HOST/REPO" in message
    assert caught.value.exit_code == 61


def test_tag_or_default_and_store_name() -> None:
    assert parse("oci:dir").tag is None
    assert parse("oci:dir").tag_or_default == "latest"
    assert parse("app").store_name == "app:latest"
    assert parse("docker-archive:x.tar:app:v2").store_name == "app:v2"


def test_references_are_frozen_and_hashable() -> None:
    ref = parse("app:v1")
    with pytest.raises(AttributeError):
        ref.tag = "v2"  # type: ignore[misc]
    assert {ref, parse("app:v1")} == {ref}
