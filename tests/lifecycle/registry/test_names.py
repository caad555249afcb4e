"""Registry image names: Docker Hub's spellings, tags, digests, ECR and loopback hosts."""

from __future__ import annotations

import pytest

from lifecycle.errors import InvalidReference
from lifecycle.registry.names import api_host, ecr_region, is_loopback, parse_name

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "host", "repository", "reference"), [
    ("alpine", "docker.io", "library/alpine", "latest"),
    ("docker.io/node:20", "docker.io", "library/node", "20"),
    ("index.docker.io/library/node:20", "docker.io", "library/node", "20"),
    ("user/app", "docker.io", "user/app", "latest"),
    ("127.0.0.1:5000/a/b:v1", "127.0.0.1:5000", "a/b", "v1"),
    ("localhost/app", "localhost", "app", "latest"),
    (f"ghcr.io/o/app@{DIGEST}", "ghcr.io", "o/app", DIGEST),
    ("[::1]:5000/app:v2", "[::1]:5000", "app", "v2"),
])
def test_parse(text: str, host: str, repository: str, reference: str) -> None:
    name = parse_name(text)
    assert (name.host, name.repository, name.reference) == (host, repository, reference)


@pytest.mark.parametrize(("text", "why"), [
    ("Docker.io/UPPER", "not a repository name"),
    ("host.example/app:bad tag", "not a tag"),
    ("host.example/app@sha256:12", "not a digest"),
    ("host.example/../etc", "not a repository name"),
    ("host.example/", "not a repository name"),
    ("bad_host.example:x/app", "not a registry host"),
])
def test_hostile_names_are_refused(text: str, why: str) -> None:
    with pytest.raises(InvalidReference, match=why) as caught:
        parse_name(text)
    assert caught.value.exit_code == 61


def test_hosts() -> None:
    assert api_host("docker.io") == "registry-1.docker.io"
    assert api_host("ghcr.io") == "ghcr.io"
    assert ecr_region("123456789012.dkr.ecr.eu-west-1.amazonaws.com") == "eu-west-1"
    assert ecr_region("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn") == "cn-north-1"
    assert ecr_region("12345.dkr.ecr.eu-west-1.amazonaws.com") is None
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:1")
    assert not is_loopback("192.0.2.1:5000") and not is_loopback("registry.example")
    assert str(parse_name("alpine")) == "docker.io/library/alpine:latest"
    assert str(parse_name("alpine").pinned(DIGEST)) == f"docker.io/library/alpine@{DIGEST}"
