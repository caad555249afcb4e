"""A Distribution token server for tests: RS256 JWTs with the signing certificate in ``x5c``.

Distribution 2.8 verifies a token by the ``x5c`` chain against its ``rootcertbundle`` (it has
no JWKS). Users given here get every action they ask for; anyone else gets no access, so a
registry behind this server refuses them just as a real one would.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from tests.infra.pki import TestAuthority
from tests.infra.services import ServiceUnavailable

ISSUER = "hybridless-test-token-issuer"
SERVICE = "hybridless-test-registry"


@dataclass
class TokenServer:
    """A running token server: ``realm`` is its URL; ``requests`` records each token asked."""

    realm: str
    users: Mapping[str, str]
    requests: list[TokenRequest] = field(default_factory=list)


@dataclass(frozen=True)
class TokenRequest:
    """One token request: who asked (None when anonymous) and the scopes, as sent."""

    user: str | None
    scopes: tuple[str, ...]
    granted: bool


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@contextmanager
def running_token_server(
    authority: TestAuthority, workdir: Path, users: Mapping[str, str]
) -> Iterator[TokenServer]:
    """Serve tokens on a loopback port until exit; the signing cert is issued by ``authority``."""
    try:
        import jwt
        from cryptography import x509
    except ImportError as exc:
        raise ServiceUnavailable(f"PyJWT and cryptography are needed ({exc})") from exc
    signer = authority.issue(workdir, "token-signer")
    leaf = x509.load_pem_x509_certificate(signer.cert_pem)
    from cryptography.hazmat.primitives import serialization

    der = leaf.public_bytes(serialization.Encoding.DER)
    x5c = [base64.b64encode(der).decode()]
    state: dict[str, TokenServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            query = parse_qsl(urlsplit(self.path).query)
            self._answer(query, self._basic_user())

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qsl(self.rfile.read(length).decode())
            values = dict(form)
            user = None
            # The refresh-token grant: the identity token is "user:password" here.
            token_user, _, token_password = values.get("refresh_token", "").partition(":")
            if users.get(token_user) == token_password and token_user:
                user = token_user
            elif values.get("refresh_token"):
                self._send(401, {"error": "invalid_grant"})
                return
            self._answer(form, user)

        def _basic_user(self) -> str | None:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return None
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return user if users.get(user) == password else ""

        def _answer(self, query: list[tuple[str, str]], user: str | None) -> None:
            server = state["server"]
            scopes = tuple(value for key, value in query if key == "scope")
            if user == "":
                server.requests.append(TokenRequest(None, scopes, False))
                self._send(401, {"details": "wrong user name or password"})
                return
            access = []
            for scope in scopes:
                kind, _, rest = scope.partition(":")
                name, _, actions = rest.rpartition(":")
                if user is not None:
                    access.append({"type": kind, "name": name, "actions": actions.split(",")})
            server.requests.append(TokenRequest(user, scopes, user is not None))
            now = int(time.time())
            claims = {
                "iss": ISSUER, "sub": user or "", "aud": SERVICE, "exp": now + 300,
                "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access,
            }
            token = jwt.encode(claims, signer.key_pem, algorithm="RS256",
                               headers={"x5c": x5c})
            self._send(200, {"token": token, "expires_in": 300})

        def _send(self, status: int, document: object) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    state["server"] = TokenServer(f"http://127.0.0.1:{port}/token", users)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["server"]
    finally:
        httpd.shutdown()
        httpd.server_close()


def token_auth_config(server: TokenServer, authority: TestAuthority) -> dict[str, object]:
    """The registry's ``auth`` section that trusts ``server``'s tokens."""
    return {
        "token": {
            "realm": server.realm,
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(authority.ca_file),
        }
    }
