"""Registry credentials for ECR hosts from ``get_authorization_token``, cached on disk.

A token lives 12 hours; we reuse it until five minutes before it expires. The cache file
holds a secret, so it is created 0600 in a 0700 directory and ignored when anyone else could
read it. Its name hashes who asked (host, endpoint, profile, access key id) so one identity
never gets another's token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle.ecr.client import AwsTarget, access_key_id, aws_session, ecr_client, translate
from lifecycle.ecr.hosts import EcrHost
from lifecycle.errors import RegistryError
from lifecycle.image.blobs import write_atomic

MARGIN_SECONDS = 300
_CACHE_DIR = "ecr-tokens"


@dataclass(frozen=True)
class EcrCredentials:
    """Basic-auth credentials for an ECR host; ``password`` never shows in a repr."""

    username: str
    password: str = field(repr=False)
    expires_at: float  # epoch seconds
    cached: bool = False  # True when read from the disk cache


def login(
    host: EcrHost, target: AwsTarget, cache_dir: Path | None, *, now: float | None = None
) -> EcrCredentials:
    """Return credentials for ``host``: from the cache when still fresh, else from ECR."""
    clock = time.time() if now is None else now
    session = aws_session(target)
    # Resolving the credentials first turns "none at all" into a clear 71 before any request,
    # and gives the cache key its identity.
    key_id = access_key_id(session, target)
    path = _cache_path(cache_dir, host, target, key_id) if cache_dir is not None else None
    if path is not None:
        hit = _read(path, clock)
        if hit is not None:
            return hit
    fresh = _fetch(ecr_client(target, session), host, target)
    # A token already expired on arrival (moto answers 2015-01-01, and a skewed clock can
    # do the same) still works for this command: use it, but never keep it.
    if path is not None and fresh.expires_at - MARGIN_SECONDS > clock:
        _write(path, fresh)
    return fresh


def _fetch(client: Any, host: EcrHost, target: AwsTarget) -> EcrCredentials:
    action = f"get an ECR authorization token for {host.host}"
    try:
        answer = client.get_authorization_token(registryIds=[host.account])
    except Exception as exc:
        translate(exc, action, target)
    data = answer.get("authorizationData") or []
    if not data:
        raise RegistryError(f"failed to {action}: ECR answered no authorizationData")
    entry = data[0]
    try:
        decoded = base64.b64decode(entry["authorizationToken"], validate=True).decode("utf-8")
    except (KeyError, binascii.Error, UnicodeDecodeError, TypeError) as exc:
        raise RegistryError(f"failed to {action}: the token is not base64 USER:PASSWORD") from exc
    username, sep, password = decoded.partition(":")
    if not sep or not username or not password:
        raise RegistryError(f"failed to {action}: the token is not USER:PASSWORD")
    expires = entry.get("expiresAt")
    # boto3 parses the timestamp into an aware datetime; a missing one means "use once".
    expires_at = expires.timestamp() if hasattr(expires, "timestamp") else 0.0
    return EcrCredentials(username=username, password=password, expires_at=expires_at)


def _cache_path(cache_dir: Path, host: EcrHost, target: AwsTarget, access_key: str) -> Path:
    identity = "\n".join(
        [host.host, target.endpoint_url or "", target.profile or "", access_key]
    ).encode()
    return cache_dir / _CACHE_DIR / f"{hashlib.sha256(identity).hexdigest()[:32]}.json"


def _read(path: Path, now: float) -> EcrCredentials | None:
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
                return None  # someone else could have written or read it: do not trust it
            document = json.loads(handle.read(65536))
        username = document["username"]
        password = document["password"]
        expires_at = float(document["expires_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    if expires_at - MARGIN_SECONDS <= now:
        return None
    return EcrCredentials(username, password, expires_at, cached=True)


def _write(path: Path, credentials: EcrCredentials) -> None:
    document = {
        "username": credentials.username,
        "password": credentials.password,
        "expires_at": credentials.expires_at,
    }
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(path, json.dumps(document).encode(), mode=0o600)
    except OSError:
        # A cache we cannot write only costs one more token request next time.
        return
