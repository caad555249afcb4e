"""The ECR control plane against moto's real server: repositories, tokens, failures."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import boto3
import pytest

from lifecycle.ecr import credentials_for, prepare_repository
from lifecycle.ecr.client import AwsTarget, target_for
from lifecycle.ecr.credentials import login
from lifecycle.ecr.hosts import parse_host
from lifecycle.ecr.repository import ensure_repository, lifecycle_policy
from lifecycle.ecr.settings import EcrSettings
from lifecycle.errors import RegistryAuthError, RegistryError, RegistryUnreachable
from tests.infra.moto_process import MotoProcess, make_tls_files, moto_process
from tests.lifecycle.ecr.conftest import ACCOUNT, HOST, REGION

ECR_HOST = parse_host(HOST)
assert ECR_HOST is not None
BEFORE_2015 = 1_400_000_000.0  # 2014-05-13: moto's 2015-01-01 token is still fresh then


def _target(moto: MotoProcess) -> AwsTarget:
    return AwsTarget(region=REGION, endpoint_url=moto.url)


def _boto(moto: MotoProcess):  # type: ignore[no-untyped-def]
    return boto3.client("ecr", region_name=REGION, endpoint_url=moto.url)


def test_two_ensures_create_once_with_the_settings(moto_ecr: MotoProcess, aws_env: Path) -> None:
    settings = EcrSettings(
        tag_mutability="IMMUTABLE",
        scan_on_push=True,
        keep_images=42,
        tags=(("team", "orders"), ("équipe", "données")),
    )
    before = moto_ecr.calls()
    first = ensure_repository(ECR_HOST, "orders/api.0-dev.v3", settings, _target(moto_ecr))
    second = ensure_repository(ECR_HOST, "orders/api.0-dev.v3", settings, _target(moto_ecr))
    calls = moto_ecr.calls() - before
    assert calls["CreateRepository"] == 1
    assert calls["PutLifecyclePolicy"] == 1
    assert (first.created, second.created) == (True, False)
    assert first.uri == f"{HOST}/orders/api.0-dev.v3"

    ecr = _boto(moto_ecr)
    repo = ecr.describe_repositories(repositoryNames=["orders/api.0-dev.v3"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["encryptionConfiguration"]["encryptionType"] == "AES256"
    tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"team": "orders", "équipe": "données"}
    policy = ecr.get_lifecycle_policy(repositoryName="orders/api.0-dev.v3")
    rule = json.loads(policy["lifecyclePolicyText"])["rules"][0]
    assert rule["selection"]["countNumber"] == 42
    assert rule["selection"]["countType"] == "imageCountMoreThan"
    assert rule["action"] == {"type": "expire"}


def test_an_existing_repository_is_left_as_it_is(moto_ecr: MotoProcess, aws_env: Path) -> None:
    ecr = _boto(moto_ecr)
    ecr.create_repository(repositoryName="theirs", imageTagMutability="MUTABLE")
    before = moto_ecr.calls()
    state = ensure_repository(
        ECR_HOST, "theirs", EcrSettings(tag_mutability="IMMUTABLE"), _target(moto_ecr)
    )
    calls = moto_ecr.calls() - before
    assert not state.created
    assert calls["CreateRepository"] == 0 and calls["PutLifecyclePolicy"] == 0
    repo = ecr.describe_repositories(repositoryNames=["theirs"])["repositories"][0]
    assert repo["imageTagMutability"] == "MUTABLE"


def test_missing_repository_without_create_is_a_registry_error(
    moto_ecr: MotoProcess, aws_env: Path
) -> None:
    with pytest.raises(RegistryError) as caught:
        ensure_repository(
            ECR_HOST, "absent", EcrSettings(create_repository=False), _target(moto_ecr)
        )
    assert caught.value.exit_code == 72
    assert "absent" in caught.value.message


def test_an_error_ecr_answers_is_72_and_one_line(moto_ecr: MotoProcess, aws_env: Path) -> None:
    # Bypasses our own validation so that the real server is the one that refuses.
    bad = EcrSettings(tag_mutability="SOMETIMES")  # type: ignore[arg-type]
    with pytest.raises(RegistryError) as caught:
        ensure_repository(ECR_HOST, "refused", bad, _target(moto_ecr))
    assert caught.value.exit_code == 72
    assert "create the ECR repository" in caught.value.message
    assert "\n" not in caught.value.message


def test_lifecycle_policy_text() -> None:
    rule = json.loads(lifecycle_policy(100))["rules"][0]
    assert rule["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 100,
    }


def test_expired_token_is_used_but_not_cached(
    moto_ecr: MotoProcess, aws_env: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    credentials = login(ECR_HOST, _target(moto_ecr), cache)
    # moto's token: base64 "AWS:<account>-auth-token", expiring 2015-01-01.
    assert credentials.username == "AWS"
    assert credentials.password == f"{ACCOUNT}-auth-token"
    assert not credentials.cached
    assert "auth-token" not in repr(credentials)
    assert not list(cache.rglob("*.json"))


def test_fresh_token_is_cached_0600_and_reused(
    moto_ecr: MotoProcess, aws_env: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    before = moto_ecr.calls()
    first = login(ECR_HOST, _target(moto_ecr), cache, now=BEFORE_2015)
    second = login(ECR_HOST, _target(moto_ecr), cache, now=BEFORE_2015)
    assert moto_ecr.calls()["GetAuthorizationToken"] - before["GetAuthorizationToken"] == 1
    assert (first.cached, second.cached) == (False, True)
    assert second.password == first.password
    (path,) = cache.rglob("*.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ACCOUNT not in path.name  # the name hashes the identity

    # Five minutes before expiry the cached token is no longer offered.
    expires = first.expires_at
    late = login(ECR_HOST, _target(moto_ecr), cache, now=expires - 299)
    assert not late.cached

    # Another identity never reads this identity's token.
    os.environ["AWS_ACCESS_KEY_ID"] = "AKIAOTHEROTHEROTHER0"
    other = login(ECR_HOST, _target(moto_ecr), cache, now=BEFORE_2015)
    assert not other.cached


def test_a_cache_file_others_can_read_is_ignored(
    moto_ecr: MotoProcess, aws_env: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    login(ECR_HOST, _target(moto_ecr), cache, now=BEFORE_2015)
    (path,) = cache.rglob("*.json")
    path.write_text(json.dumps({"username": "AWS", "password": "planted", "expires_at": 2e9}))
    path.chmod(0o644)
    again = login(ECR_HOST, _target(moto_ecr), cache, now=BEFORE_2015)
    assert again.password != "planted"
    path.write_text("{not json")
    path.chmod(0o600)
    assert not login(ECR_HOST, _target(moto_ecr), cache, now=BEFORE_2015).cached


def test_credentials_for_follows_aws_endpoint_url(
    moto_ecr: MotoProcess, aws_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the ECR-specific one wins
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", moto_ecr.url)
    assert credentials_for("registry-1.docker.io") is None
    found = credentials_for(HOST, cache_dir=tmp_path)
    assert found is not None and found.username == "AWS"
    assert target_for("eu-west-1").endpoint_url == moto_ecr.url


def test_profiles_are_honoured(
    moto_ecr: MotoProcess, aws_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (aws_env / "credentials").write_text(
        "[orders]\naws_access_key_id = AKIAPROFILEPROFILE00\naws_secret_access_key = s\n"
    )
    monkeypatch.setenv("AWS_PROFILE", "orders")
    target = target_for(REGION, environ={"AWS_ENDPOINT_URL_ECR": moto_ecr.url, **os.environ})
    assert target.profile == "orders"
    assert login(ECR_HOST, target, None).username == "AWS"


def test_no_credentials_is_71(
    moto_ecr: MotoProcess, aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(RegistryAuthError) as caught:
        login(ECR_HOST, _target(moto_ecr), None)
    assert caught.value.exit_code == 71
    assert "no complete AWS credentials" in caught.value.message


def test_unknown_profile_is_71(moto_ecr: MotoProcess, aws_env: Path) -> None:
    target = AwsTarget(region=REGION, endpoint_url=moto_ecr.url, profile="nope")
    with pytest.raises(RegistryAuthError, match="nope"):
        login(ECR_HOST, target, None)


def test_missing_region_is_71(aws_env: Path) -> None:
    with pytest.raises(RegistryAuthError, match="no AWS region"):
        login(ECR_HOST, AwsTarget(region=""), None)


def test_credentials_aws_refuses_are_71(tmp_path: Path, aws_env: Path) -> None:
    with moto_process(tmp_path / "moto-iam", require_auth=True) as strict:
        with pytest.raises(RegistryAuthError) as caught:
            login(ECR_HOST, _target(strict), None)
        with pytest.raises(RegistryAuthError):
            ensure_repository(ECR_HOST, "xy", EcrSettings(), _target(strict))
    assert caught.value.exit_code == 71
    assert "test-secret-key" not in str(caught.value)
    assert "\n" not in caught.value.message


def test_unreachable_endpoint_is_70(aws_env: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        target = AwsTarget(region=REGION, endpoint_url=f"http://127.0.0.1:{port}")
        with pytest.raises(RegistryUnreachable) as caught:
            login(ECR_HOST, target, None)
    assert caught.value.exit_code == 70


def test_tls_endpoint_needs_its_ca(
    tmp_path: Path, aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = make_tls_files(tmp_path / "tls")
    with moto_process(tmp_path / "moto-tls", tls=(cert, key)) as secure:
        assert secure.url.startswith("https://")
        target = AwsTarget(region=REGION, endpoint_url=secure.url)
        with pytest.raises(RegistryUnreachable) as caught:
            login(ECR_HOST, target, None)
        assert caught.value.exit_code == 70
        assert "TLS" in caught.value.message and "--ca-bundle" in str(caught.value)
        # The --ca-bundle argument ...
        with_ca = AwsTarget(region=REGION, endpoint_url=secure.url, ca_bundle=ca)
        assert login(ECR_HOST, with_ca, None).username == "AWS"
        # ... and AWS_CA_BUNDLE, which botocore applies itself.
        monkeypatch.setenv("AWS_CA_BUNDLE", str(ca))
        assert login(ECR_HOST, target, None).username == "AWS"


def test_prepare_repository_only_touches_ecr_hosts(
    moto_ecr: MotoProcess, aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", moto_ecr.url)
    before = moto_ecr.calls()
    assert prepare_repository("127.0.0.1:5000", "orders/api", EcrSettings()) is None
    assert moto_ecr.calls() == before
    state = prepare_repository(HOST, "prepared/api", EcrSettings())
    assert state is not None and state.created
