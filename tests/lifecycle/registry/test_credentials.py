"""Credentials from docker's config.json, auth.json and helpers: hostile files refused clearly."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from lifecycle.errors import RegistryAuthError
from lifecycle.registry.credentials import find_credential
from tests.infra.oci_images import docker_config


def _env(tmp_path: Path, document: object) -> dict[str, str]:
    directory = tmp_path / "cfg"
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(document))
    return {"DOCKER_CONFIG": str(directory), "PATH": "/usr/bin:/bin"}


def test_auths_forms_and_docker_hub_key(tmp_path: Path) -> None:
    encoded = base64.b64encode(b"user:p4ss:with:colons").decode()
    env = _env(tmp_path, {"auths": {
        "https://index.docker.io/v1/": {"auth": encoded},
        "reg.example:5000": {"username": "u", "password": "p"},
        "token.example": {"identitytoken": "tok"},
    }})
    hub = find_credential("docker.io", env)
    assert hub is not None and (hub.username, hub.secret) == ("user", "p4ss:with:colons")
    plain = find_credential("reg.example:5000", env)
    assert plain is not None and plain.username == "u"
    token = find_credential("token.example", env)
    assert token is not None and token.identity_token
    assert find_credential("other.example", env) is None
    assert "p4ss" not in repr(hub)


@pytest.mark.parametrize("document", [
    {"auths": {"reg.example": {"auth": "%%%not-base64"}}},
    {"auths": {"reg.example": {"auth": base64.b64encode(b"no-colon").decode()}}},
])
def test_bad_auth_entries_name_the_file_not_the_secret(tmp_path: Path, document: object) -> None:
    env = _env(tmp_path, document)
    with pytest.raises(RegistryAuthError, match=r"config\.json auths\['reg\.example'\]") as err:
        find_credential("reg.example", env)
    assert "no-colon" not in str(err.value)


def test_malformed_config_json_is_exit_71(tmp_path: Path) -> None:
    env = docker_config(tmp_path / "cfg", {})
    (tmp_path / "cfg" / "config.json").write_text('{"auths": {"reg.example": {"auth": "s3cr')
    with pytest.raises(RegistryAuthError, match="failed to read credentials file") as err:
        find_credential("reg.example", env)
    assert "s3cr" not in str(err.value)


def _helper(tmp_path: Path, body: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker-credential-hostile"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    env = _env(tmp_path, {"credHelpers": {"reg.example": "hostile"}})
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    return env


def test_helpers_that_fail_or_answer_garbage(tmp_path: Path) -> None:
    env = _helper(tmp_path, "echo 'not json'\n")
    with pytest.raises(RegistryAuthError, match="did not answer a JSON object"):
        find_credential("reg.example", env)


def test_helper_exit_and_missing_helper(tmp_path: Path) -> None:
    env = _helper(tmp_path, "echo boom >&2; exit 3\n")
    with pytest.raises(RegistryAuthError, match="exited with 3"):
        find_credential("reg.example", env)
    env["PATH"] = "/usr/bin:/bin"
    with pytest.raises(RegistryAuthError, match="docker-credential-hostile is not on PATH"):
        find_credential("reg.example", env)


def test_helper_not_found_means_anonymous(tmp_path: Path) -> None:
    env = _helper(tmp_path, "echo 'credentials not found in native keychain'; exit 1\n")
    assert find_credential("reg.example", env) is None
