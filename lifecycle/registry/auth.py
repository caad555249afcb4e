"""The registry auth challenge: ``WWW-Authenticate`` Bearer (token per scope) and Basic.

A request goes out with whatever header the cache holds for its scopes; a 401 names the
scheme, and :meth:`Authenticator.answer` gets a header for it (a token from the realm, with
credentials when we have some) or raises :class:`RegistryAuthError`.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import requests

from lifecycle.errors import RegistryAuthError, RegistryError
from lifecycle.registry.credentials import Credential

if TYPE_CHECKING:
    from lifecycle.registry.transport import Transport

_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')
# Tokens without expires_in live 60 s (Distribution's token spec); renew a little early.
_DEFAULT_LIFETIME = 60.0
_MARGIN = 10.0


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: its scheme (lowercase) and parameters."""

    scheme: str
    realm: str = ""
    service: str = ""


def parse_challenge(header: str) -> Challenge | None:
    """Parse ``Bearer realm="…",service="…",scope="…"`` or ``Basic realm="…"``."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params.get("realm", ""), params.get("service", ""))


def pull_scope(repository: str) -> str:
    """The token scope to read ``repository``."""
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    """The token scope to write ``repository`` (reading it too, for blob checks)."""
    return f"repository:{repository}:pull,push"


class Authenticator:
    """Authorization headers for one registry host, cached per set of scopes."""

    def __init__(
        self,
        host: str,
        transport: Transport,
        credential: Callable[[], Credential | None],
    ) -> None:
        self.host = host
        self.transport = transport
        self._lookup = credential
        self._credential: Credential | None = None
        self._looked_up = False
        self._headers: dict[tuple[str, ...], tuple[str, float]] = {}
        self._basic: str | None = None
        self._lock = threading.Lock()

    def header(self, scopes: Sequence[str]) -> str | None:
        """The cached ``Authorization`` value for ``scopes``, or None."""
        with self._lock:
            if self._basic is not None:
                return self._basic
            cached = self._headers.get(tuple(sorted(scopes)))
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
            return None

    def answer(self, response: requests.Response, scopes: Sequence[str]) -> str:
        """A header that answers the 401 ``response`` for ``scopes``."""
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        credential = self._credential_once()
        if challenge is not None and challenge.scheme == "basic":
            if credential is None or credential.identity_token:
                raise self._refused(None, "it asks for a user name and password")
            raw = f"{credential.username}:{credential.secret}".encode()
            value = "Basic " + base64.b64encode(raw).decode()
            with self._lock:
                self._basic = value
            return value
        if challenge is None or challenge.scheme != "bearer" or not challenge.realm:
            raise RegistryAuthError(
                f"failed to authenticate to registry {self.host}: "
                "it answered 401 without a Bearer or Basic challenge",
            )
        token, lifetime = self._fetch_token(challenge, scopes, credential)
        value = f"Bearer {token}"
        with self._lock:
            self._headers[tuple(sorted(scopes))] = (
                value, time.monotonic() + max(lifetime - _MARGIN, 1.0))
        return value

    def rejected(self, scopes: Sequence[str]) -> RegistryAuthError:
        """The error for a request still refused after answering the challenge."""
        return self._refused(self._credential_once(), f"access to {', '.join(scopes)} is denied")

    def _credential_once(self) -> Credential | None:
        with self._lock:
            if not self._looked_up:
                self._credential = self._lookup()
                self._looked_up = True
            return self._credential

    def _fetch_token(
        self, challenge: Challenge, scopes: Sequence[str], credential: Credential | None
    ) -> tuple[str, float]:
        params: list[tuple[str, str]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params += [("scope", scope) for scope in scopes]
        verify = self.transport.verify_for(self.host)
        if credential is not None and credential.identity_token:
            # OAuth2 refresh-token grant: how an identity token turns into an access token.
            form = [("grant_type", "refresh_token"), ("refresh_token", credential.secret),
                    ("client_id", "hybridless-lifecycle"), *params]
            response = self.transport.send(
                "POST", challenge.realm, verify=verify, body=lambda: _form(form),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                what="token request",
            )
        else:
            headers = {}
            if credential is not None:
                raw = f"{credential.username}:{credential.secret}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
            query = urlencode(params)
            separator = "&" if "?" in challenge.realm else "?"
            url = f"{challenge.realm}{separator}{query}" if params else challenge.realm
            response = self.transport.send(
                "GET", url, verify=verify, headers=headers, what="token request")
        with response:
            if response.status_code in (401, 403):
                raise self._refused(credential, "the token server refused the request")
            if response.status_code != 200:
                raise RegistryError(
                    f"failed to authenticate to registry {self.host}: the token server "
                    f"answered HTTP {response.status_code}",
                )
            try:
                document = response.json()
                token = document.get("token") or document.get("access_token")
                lifetime = float(document.get("expires_in") or _DEFAULT_LIFETIME)
            except (ValueError, AttributeError, TypeError) as error:
                raise RegistryError(
                    f"failed to authenticate to registry {self.host}: the token server did "
                    "not answer a JSON document with a token",
                ) from error
        if not isinstance(token, str) or not token:
            raise RegistryError(
                f"failed to authenticate to registry {self.host}: the token answer has no token"
            )
        return token, lifetime

    def _refused(self, credential: Credential | None, why: str) -> RegistryAuthError:
        if credential is None:
            return RegistryAuthError(
                f"failed to authenticate to registry {self.host}: {why} and no credentials "
                "were found for it",
                hint=f"log in (docker login {self.host}, or skopeo login) or set "
                "REGISTRY_AUTH_FILE / DOCKER_CONFIG",
            )
        return RegistryAuthError(
            f"failed to authenticate to registry {self.host} as {credential.username or '<token>'}"
            f" (credentials from {credential.source}): {why}",
            hint="check the user name and password, and that the account may use this repository",
        )


def _form(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode(pairs).encode()
