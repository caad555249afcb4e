"""The request's headers as each event format groups them."""

from __future__ import annotations

from ..http11 import Request

_Multi = dict[str, list[str]]


def by_first_spelling(request: Request) -> tuple[dict[str, str] | None, _Multi | None]:
    """REST v1's ``(headers, multiValueHeaders)``, grouped under the first spelling sent."""
    # Repeats in any case go under the first spelling; (None, None) without headers.
    raw_headers = request.headers
    if not raw_headers:
        return None, None
    # Repeated names are rare; without them the hmap (keyed by lower-cased name) has one entry
    # per header, and one comprehension groups all.
    if len(request.hmap) == len(raw_headers):
        return dict(raw_headers), {name: [value] for name, value in raw_headers}
    multi = _grouped(raw_headers)
    return {name: values[-1] for name, values in multi.items()}, multi


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Header values grouped case-insensitively under the first spelling the client sent."""
    spelling: dict[str, str] = {}
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        first = spelling.setdefault(name.lower(), name)
        if first in out:
            out[first].append(value)
        else:
            out[first] = [value]
    return out


def joined_and_cookies(request: Request) -> tuple[dict[str, str], list[str]]:
    """HTTP API 2.0's lower-cased headers, repeats joined with ``,``, and its ``cookies`` list."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            # HTTP APIs move cookies out of the headers into their own list.
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers, cookies


def lower_last(request: Request) -> dict[str, str]:
    """ALB's single-value headers: lower-cased names, the last value of each."""
    return {name.lower(): value for name, value in request.headers}


def lower_all(request: Request) -> dict[str, list[str]]:
    """ALB's multi-value headers: lower-cased names, every value in order."""
    out: dict[str, list[str]] = {}
    for name, value in request.headers:
        key = name.lower()
        if key in out:
            out[key].append(value)
        else:
            out[key] = [value]
    return out
