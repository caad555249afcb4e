"""Registry credentials, found as docker, skopeo and crane find them (CONTRACT §5).

Order: ``$REGISTRY_AUTH_FILE`` (containers' auth.json), then ``$DOCKER_CONFIG/config.json``
(else ``~/.docker/config.json``): ``credHelpers`` for the host, ``credsStore``, ``auths``.
Amazon ECR hosts use boto3's credential chain. Secrets stay inside :class:`Credential`,
whose repr hides them, and are never put into a message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle.errors import RegistryAuthError
from lifecycle.registry.names import DOCKER_HUB, canonical_host, ecr_region

# Docker keeps Docker Hub's credentials under its v1 index URL.
_HUB_KEY = "https://index.docker.io/v1/"
_HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credential:
    """A user name and secret for one registry, and where they came from (for messages)."""

    username: str
    secret: str = field(repr=False)
    source: str
    # An identity token is exchanged for access tokens (OAuth2 refresh-token grant).
    identity_token: bool = False


def find_credential(host: str, environ: Mapping[str, str] | None = None) -> Credential | None:
    """The credential for ``host``, or None to go anonymous."""
    env = os.environ if environ is None else environ
    host = canonical_host(host)
    if ecr_region(host) is not None:
        return _ecr_credential(host)
    auth_file = env.get("REGISTRY_AUTH_FILE")
    if auth_file:
        found = _from_auths(Path(auth_file), host)
        if found is not None:
            return found
    config = Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    document = _read_json(config)
    helpers = document.get("credHelpers")
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if _same_host(key, host) and isinstance(helper, str):
                return _from_helper(helper, host, env)
    store = document.get("credsStore")
    if isinstance(store, str) and store:
        found = _from_helper(store, host, env)
        if found is not None:
            return found
    return _from_auths(config, host, document)


def _from_auths(
    path: Path, host: str, document: Mapping[str, object] | None = None
) -> Credential | None:
    document = _read_json(path) if document is None else document
    auths = document.get("auths")
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if not _same_host(key, host) or not isinstance(entry, dict):
            continue
        source = f"{path} auths[{key!r}]"
        token = entry.get("identitytoken")
        username, password = entry.get("username"), entry.get("password")
        encoded = entry.get("auth")
        if isinstance(encoded, str) and encoded:
            username, password = _decode_auth(encoded, source)
        if isinstance(token, str) and token:
            return Credential(str(username or ""), token, source, identity_token=True)
        if isinstance(username, str) and isinstance(password, str) and username:
            return Credential(username, password, source)
    return None


def _decode_auth(encoded: str, source: str) -> tuple[str, str]:
    try:
        username, colon, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        colon = ""
    if not colon:
        raise RegistryAuthError(
            f"failed to read credentials from {source}: 'auth' is not base64 of user:password",
            hint="log in again (docker login / skopeo login) to rewrite the entry",
        )
    return username, password


def _from_helper(name: str, host: str, env: Mapping[str, str]) -> Credential | None:
    program = f"docker-credential-{name}"
    found = shutil.which(program, path=env.get("PATH"))
    if found is None:
        raise RegistryAuthError(
            f"failed to get credentials for {host}: the credential helper {program} is not on PATH",
            hint="install it, or remove it from credHelpers/credsStore in config.json",
        )
    server = _HUB_KEY if host == DOCKER_HUB else host
    try:
        done = subprocess.run(
            [found, "get"],
            input=server,
            capture_output=True,
            text=True,
            timeout=_HELPER_TIMEOUT,
            env=dict(env),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RegistryAuthError(f"failed to run credential helper {program}: {error}") from error
    if done.returncode != 0:
        # The helpers' protocol: "credentials not found" on stdout means nothing is stored.
        if "credentials not found" in (done.stdout + done.stderr).lower():
            return None
        raise RegistryAuthError(
            f"failed to get credentials for {host}: {program} exited with {done.returncode}",
            hint="run it by hand ('echo HOST | docker-credential-NAME get') to see why",
        )
    try:
        answer = json.loads(done.stdout)
        username, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError) as error:
        raise RegistryAuthError(
            f"failed to get credentials for {host}: {program} did not answer "
            "a JSON object with Username and Secret"
        ) from error
    if not isinstance(username, str) or not isinstance(secret, str) or not secret:
        return None
    source = f"credential helper {program}"
    if username == "<token>":
        return Credential("", secret, source, identity_token=True)
    return Credential(username, secret, source)


def _ecr_credential(host: str) -> Credential:
    # The ECR room owns the login (boto3's chain, its token cache); we only carry the result.
    from lifecycle.ecr import credentials_for

    found = credentials_for(host)
    if found is None:  # pragma: no cover - the caller checked that this is an ECR host
        raise RegistryAuthError(f"failed to log in to {host}: it is not an Amazon ECR host")
    return Credential(found.username, found.password, "Amazon ECR GetAuthorizationToken")


def _same_host(key: str, host: str) -> bool:
    bare = key.split("://", 1)[-1].split("/", 1)[0]
    return canonical_host(bare) == host


def _read_json(path: Path) -> dict[str, object]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise RegistryAuthError(
            f"failed to read credentials file {path}: {type(error).__name__}",
            hint="fix or remove the file",
        ) from error
    return document if isinstance(document, dict) else {}
