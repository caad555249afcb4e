"""CORS from the ``CORS`` setting: preflight answers and headers on every response."""

from __future__ import annotations

from .http11 import Request, Response
from .settings import Cors

ALLOWED_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS"
MAX_AGE = "86400"


def allowed_origin(cors: Cors, origin: str | None) -> str | None:
    """The ``Access-Control-Allow-Origin`` value for a request from ``origin``, or None."""
    if isinstance(cors.origin, tuple):
        if "*" in cors.origin:
            return origin if (cors.allow_credentials and origin) else "*"
        return origin if origin in cors.origin else None
    if cors.origin == "*":
        # Browsers refuse "*" on credentialed requests: echo the caller instead.
        return origin if (cors.allow_credentials and origin) else "*"
    return cors.origin


def is_preflight(request: Request) -> bool:
    """True for a browser's ``OPTIONS`` preflight request."""
    return (
        request.method == "OPTIONS"
        and request.header("origin") is not None
        and request.header("access-control-request-method") is not None
    )


def _common(cors: Cors, request: Request) -> list[tuple[str, str]]:
    origin = allowed_origin(cors, request.header("origin"))
    if origin is None:
        return []
    headers = [("Access-Control-Allow-Origin", origin)]
    if origin != "*":
        headers.append(("Vary", "Origin"))
    if cors.allow_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    return headers


def preflight(cors: Cors, request: Request) -> Response:
    """The answer to a preflight, given without calling the handler."""
    headers = _common(cors, request)
    if headers:
        # Without a configured list, grant what the browser asked for.
        allow_headers = ",".join(cors.headers) or request.header("access-control-request-headers")
        headers.append(("Access-Control-Allow-Methods", ALLOWED_METHODS))
        if allow_headers:
            headers.append(("Access-Control-Allow-Headers", allow_headers))
        headers.append(("Access-Control-Max-Age", MAX_AGE))
    return Response(204, headers)


def decorate(cors: Cors, request: Request, response: Response) -> None:
    """Add CORS headers to ``response`` where the handler did not set them itself."""
    present = {name.lower() for name, _ in response.headers}
    if "access-control-allow-origin" in present or request.header("origin") is None:
        return
    for name, value in _common(cors, request):
        if name.lower() not in present:
            response.headers.append((name, value))
