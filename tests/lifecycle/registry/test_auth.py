"""Authentication against real registries: htpasswd Basic and Bearer tokens from a token server."""

from __future__ import annotations

import base64
import logging
import secrets
import stat
from pathlib import Path

import pytest

from lifecycle.errors import RegistryAuthError
from lifecycle.registry.client import RegistryClient
from lifecycle.registry.config import HostSettings, RegistrySettings
from lifecycle.registry.names import parse_name
from tests.infra.oci_images import (
    FAST_RETRY,
    basic_auths,
    docker_config,
    make_image,
)
from tests.infra.services import Registry
from tests.infra.token_server import TokenServer


def _client(environ: dict[str, str]) -> RegistryClient:
    return RegistryClient(RegistrySettings(), environ=environ, retry=FAST_RETRY)


def _auths(host: str, user: str, password: str) -> dict[str, object]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"auths": {f"https://{host}/v1/": {"auth": encoded}}}


def test_basic_auth_with_config_json(registry_auth: Registry, tmp_path: Path) -> None:
    env = docker_config(tmp_path / "cfg", basic_auths(registry_auth))
    image = make_image(tmp_path / "src", seed="basic")
    name = parse_name(f"{registry_auth.host}/basic:v1")
    with _client(env) as client:
        assert client.push(name, image.manifest, image.open).digest == image.manifest.digest
        assert client.pull(name, tmp_path / "blobs").manifest.digest == image.manifest.digest


def test_basic_auth_without_credentials_is_exit_71(registry_auth: Registry, tmp_path: Path) -> None:
    env = docker_config(tmp_path / "cfg", {})
    with _client(env) as client, pytest.raises(RegistryAuthError, match="no credentials") as err:
        client.head_manifest(parse_name(f"{registry_auth.host}/basic:v1"))
    assert err.value.exit_code == 71
    assert "docker login" in str(err.value)


def test_wrong_password_is_exit_71_and_never_shown(
    registry_auth: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "wrong-" + secrets.token_hex(8)
    env = docker_config(tmp_path / "cfg", _auths(registry_auth.host, "hybridless", secret))
    caplog.set_level(logging.DEBUG)
    with _client(env) as client, pytest.raises(RegistryAuthError) as err:
        client.head_manifest(parse_name(f"{registry_auth.host}/basic:v1"))
    text = str(err.value) + repr(err.value) + caplog.text
    assert "as hybridless" in text and "config.json" in text
    assert secret not in text
    assert base64.b64encode(f"hybridless:{secret}".encode()).decode() not in text


def test_bearer_token_push_pull_and_mount_scopes(
    registry_token: Registry, token_server: TokenServer, tmp_path: Path
) -> None:
    assert registry_token.username and registry_token.password
    env = docker_config(tmp_path / "cfg", _auths(
        registry_token.host, registry_token.username, registry_token.password))
    image = make_image(tmp_path / "src", seed="token")
    first = parse_name(f"{registry_token.host}/team/first:v1")
    second = parse_name(f"{registry_token.host}/team/second:v1")
    with _client(env) as client:
        client.push(first, image.manifest, image.open)
        token_server.requests.clear()
        moved = client.push(second, image.manifest, image.open, mount_from=[first.repository])
        assert set(moved.blobs.values()) == {"mounted"}
        assert client.pull(second, tmp_path / "blobs").manifest.digest == image.manifest.digest
    asked = [set(r.scopes) for r in token_server.requests]
    assert {"repository:team/second:pull,push", "repository:team/first:pull"} in asked
    assert all(r.user == registry_token.username for r in token_server.requests)


def test_bearer_identity_token_uses_the_refresh_grant(
    registry_token: Registry, token_server: TokenServer, tmp_path: Path
) -> None:
    identity = f"{registry_token.username}:{registry_token.password}"
    env = docker_config(tmp_path / "cfg", {
        "auths": {registry_token.host: {"identitytoken": identity}}})
    image = make_image(tmp_path / "src", seed="identity")
    with _client(env) as client:
        client.push(parse_name(f"{registry_token.host}/idtoken:v1"), image.manifest, image.open)


def test_bearer_anonymous_is_refused_with_exit_71(registry_token: Registry, tmp_path: Path) -> None:
    env = docker_config(tmp_path / "cfg", {})
    with _client(env) as client, pytest.raises(RegistryAuthError, match="no credentials"):
        client.get_manifest(parse_name(f"{registry_token.host}/team/first:v1"))


def test_bearer_wrong_password_is_exit_71_without_the_secret(
    registry_token: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "nope-" + secrets.token_hex(8)
    env = docker_config(tmp_path / "cfg", _auths(registry_token.host, "intruder", secret))
    caplog.set_level(logging.DEBUG)
    with _client(env) as client, pytest.raises(RegistryAuthError, match="token server") as err:
        client.get_manifest(parse_name(f"{registry_token.host}/team/first:v1"))
    assert secret not in str(err.value) + caplog.text


def _helper(bin_dir: Path, registry: Registry) -> dict[str, str]:
    """A docker-credential-test helper that knows one registry, on PATH."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "docker-credential-test"
    script.write_text(
        "#!/bin/sh\n"
        "read -r server\n"
        f'if [ "$1" = get ] && [ "$server" = "{registry.host}" ]; then\n'
        f"  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{registry.username}\","
        f"\"Secret\":\"{registry.password}\"}}' \"$server\"\n"
        "  exit 0\n"
        "fi\n"
        "echo 'credentials not found in native keychain'\n"
        "exit 1\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin"}


@pytest.mark.parametrize("style", ["credHelpers", "credsStore"])
def test_credential_helper(registry_auth: Registry, tmp_path: Path, style: str) -> None:
    document: dict[str, object] = (
        {"credHelpers": {registry_auth.host: "test"}} if style == "credHelpers"
        else {"credsStore": "test"})
    env = docker_config(tmp_path / "cfg", document)
    env.update(_helper(tmp_path / "bin", registry_auth))
    image = make_image(tmp_path / "src", seed=style)
    with _client(env) as client:
        client.push(parse_name(f"{registry_auth.host}/{style.lower()}:v1"), image.manifest,
                    image.open)


def test_registry_auth_file_comes_first(registry_auth: Registry, tmp_path: Path) -> None:
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(__import__("json").dumps(basic_auths(registry_auth)))
    env = docker_config(tmp_path / "cfg", _auths(registry_auth.host, "hybridless", "stale"))
    env["REGISTRY_AUTH_FILE"] = str(auth_file)
    with _client(env) as client:
        assert client.head_manifest(parse_name(f"{registry_auth.host}/none:v1")) is None


def test_ecr_host_logs_in_with_boto3(
    moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.infra.services import running_registry

    account = "123456789012"
    host = f"{account}.dkr.ecr.eu-west-1.amazonaws.com"
    for key, value in {"AWS_ENDPOINT_URL_ECR": moto_server, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(key, value)
    image = make_image(tmp_path / "src", seed="ecr")
    # moto's token decodes to AWS:<account>-auth-token; the data plane is a real registry.
    with running_registry(tmp_path / "ecr", credentials=("AWS", f"{account}-auth-token")) as ecr:
        settings = RegistrySettings(hosts={host: HostSettings(endpoint=ecr.host)})
        env = docker_config(tmp_path / "cfg", {})
        with RegistryClient(settings, environ=env, retry=FAST_RETRY) as client:
            pushed = client.push(parse_name(f"{host}/orders:v1"), image.manifest, image.open)
    assert pushed.references == (f"{host}/orders@{image.manifest.digest}",)
