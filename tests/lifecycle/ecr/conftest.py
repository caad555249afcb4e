"""Fixtures for the ECR tests: an AWS environment that cannot reach real AWS, and moto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra.moto_process import MotoProcess, moto_process
from tests.infra.services import ServiceUnavailable, unavailable

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"
HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


@pytest.fixture(scope="module")
def moto_ecr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoProcess]:
    """A moto server of this module's own, recording every request."""
    try:
        with moto_process(tmp_path_factory.mktemp("moto-ecr")) as server:
            yield server
    except ServiceUnavailable as exc:
        unavailable("moto's server", str(exc))


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Static test credentials, no profile files, no instance metadata; returns the AWS dir."""
    aws_dir = tmp_path / "aws"
    aws_dir.mkdir()
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_ECR",
        "AWS_CA_BUNDLE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_dir / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws_dir / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return aws_dir
